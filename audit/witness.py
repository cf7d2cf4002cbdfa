"""Checkpoints written outside the database: one signed file per checkpoint in
`AUDIT_WITNESS_DIR`, and a POST to `AUDIT_WITNESS_URL` when it is set.

Someone who holds both the database and the signing key can rebuild the chain and sign it again;
they cannot take back what a witness already holds. `audit_verify --witness DIR` then finds every
witnessed head that the database chain no longer explains. Production keeps the directory on
storage the portal can add to but not rewrite (a WORM bucket such as S3 Object Lock); the files
are append-only by convention here: never overwritten, never removed by the portal.
"""

import json
import logging
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings

from audit.chain import format_timestamp
from audit.models import AuditCheckpoint

logger = logging.getLogger(__name__)

WITNESS_FORMAT = "gatehouse-audit-witness/v1"
POST_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class WitnessedHead:
    source: str
    size: int
    tip_hash: str
    root: str
    key_id: str
    signature: str


def head_of(checkpoint: AuditCheckpoint) -> dict:
    return {
        "format": WITNESS_FORMAT,
        "checkpoint_id": checkpoint.pk,
        "size": checkpoint.size,
        "tip_hash": checkpoint.tip_hash,
        "root": checkpoint.merkle_root,
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
        "created_at": format_timestamp(checkpoint.created_at),
    }


def witness_checkpoint(checkpoint: AuditCheckpoint) -> None:
    """Publish one checkpoint to every configured witness. Runs after the checkpoint commits;
    a witness that cannot be reached is logged, never allowed to undo the checkpoint."""
    head = head_of(checkpoint)
    try:
        witness_write(Path(settings.AUDIT_WITNESS_DIR), head)
    except OSError:
        logger.exception("Could not write checkpoint #%s to the witness directory", checkpoint.pk)
    if settings.AUDIT_WITNESS_URL:
        try:
            witness_post(settings.AUDIT_WITNESS_URL, head)
        except (OSError, ValueError):
            logger.exception("Could not post checkpoint #%s to the witness", checkpoint.pk)


def witness_write(directory: Path, head: dict) -> Path:
    """One file per checkpoint, created once (O_EXCL): an existing file is never replaced."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{head['size']:012d}-{head['key_id']}-{head['checkpoint_id']}.json"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return path
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(head, handle, sort_keys=True)
        handle.write("\n")
    return path


def witness_post(url: str, head: dict) -> None:
    if urlparse(url).scheme not in ("http", "https"):
        raise ValueError(f"AUDIT_WITNESS_URL must be http or https, not {url!r}")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url,
        data=json.dumps(head, sort_keys=True).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=POST_TIMEOUT_SECONDS) as response:  # noqa: S310  # nosec B310
        if not 200 <= response.status < 300:
            raise OSError(f"the witness answered {response.status}")


def witnessed_heads(directory: Path) -> list[WitnessedHead]:
    """Every head in a witness directory; a file that is not one is reported as a bad head
    (size -1), since a witness holds nothing else."""
    heads = []
    for path in sorted(Path(directory).glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            heads.append(
                WitnessedHead(
                    source=path.name,
                    size=int(record["size"]),
                    tip_hash=str(record["tip_hash"]),
                    root=str(record["root"]),
                    key_id=str(record["key_id"]),
                    signature=str(record["signature"]),
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            heads.append(WitnessedHead(path.name, -1, "", "", "", ""))
    return heads
