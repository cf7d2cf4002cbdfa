"""The Ed25519 key that signs audit checkpoints, and the keys it replaced.

Production passes the private key as PEM in `AUDIT_SIGNING_KEY`. The embedded default generates
one into `AUDIT_SIGNING_KEY_FILE` on first use and says so in the log, because a key that lives
next to the database it protects only guards against accidents, not against its administrator.

Retired keys stay trusted through `AuditKeyRotation` records, each signed by both keys: the key
ring is the current key and every key such records link to it (`offline_verify.extend_trust`,
the same rule an auditor's machine applies to an export).
"""

import logging
import os
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

# The offline verifier is the reference for key ids; the portal names its keys the same way.
from audit.chain import format_timestamp
from audit.offline_verify import extend_trust, key_id_of

logger = logging.getLogger(__name__)


def load_private_pem(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("AUDIT_SIGNING_KEY must be an Ed25519 private key.")
    return key


def _private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _generate_into(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    pem = _private_pem(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: when two processes race on first use, one writes and the other reads its key.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_private_pem(path.read_bytes())
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    logger.warning(
        "Generated a new audit signing key in %s. Set AUDIT_SIGNING_KEY in production and keep "
        "the key away from the database it protects.",
        path,
    )
    return key


@lru_cache(maxsize=4)
def _private_key(pem_setting: str, key_file: str) -> Ed25519PrivateKey:
    if pem_setting:
        return load_private_pem(pem_setting.encode())
    path = Path(key_file)
    if path.exists():
        return load_private_pem(path.read_bytes())
    return _generate_into(path)


def private_key() -> Ed25519PrivateKey:
    return _private_key(settings.AUDIT_SIGNING_KEY, str(settings.AUDIT_SIGNING_KEY_FILE))


def public_key() -> Ed25519PublicKey:
    return private_key().public_key()


def public_key_pem() -> str:
    return public_pem(public_key())


def current_key_id() -> str:
    return key_id_of(public_key())


def sign(message: bytes) -> str:
    return private_key().sign(message).hex()


def install_key_file(key: Ed25519PrivateKey) -> None:
    """Replace the embedded key file with `key` (mode 0600, atomically) and use it from now on.
    Other processes read the file again when they restart; until then they sign with the retired
    key, which stays trusted."""
    path = Path(settings.AUDIT_SIGNING_KEY_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.new")
    staging.unlink(missing_ok=True)
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(_private_pem(key))
    os.replace(staging, path)
    _private_key.cache_clear()


def rotation_records() -> list[dict]:
    """Every recorded rotation, as the export carries it and `extend_trust` reads it."""
    from audit.models import AuditKeyRotation

    return [
        {
            "old_key_id": rotation.old_key_id,
            "old_public_key": rotation.old_public_key,
            "new_key_id": rotation.new_key_id,
            "new_public_key": rotation.new_public_key,
            "rotated_at": format_timestamp(rotation.rotated_at),
            "old_signature": rotation.old_signature,
            "new_signature": rotation.new_signature,
        }
        for rotation in AuditKeyRotation.objects.order_by("rotated_at", "id")
    ]


def key_ring(records: list[dict] | None = None) -> dict[str, Ed25519PublicKey]:
    """The keys whose signatures the portal accepts: the current one and the retired ones."""
    current = public_key()
    records = rotation_records() if records is None else records
    return extend_trust({key_id_of(current): current}, records)


def published_keys() -> list[dict]:
    """The key ring for people: current key first, then retired ones newest first."""
    records = rotation_records()
    ring = key_ring(records)
    retired_at = {record["old_key_id"]: record["rotated_at"] for record in records}
    current_id = current_key_id()
    ordered = sorted(ring, key=lambda key_id: retired_at.get(key_id, ""), reverse=True)
    ordered.sort(key=lambda key_id: key_id != current_id)
    return [
        {
            "key_id": key_id,
            "public_key": public_pem(ring[key_id]),
            "current": key_id == current_id,
            "retired_at": retired_at.get(key_id) if key_id != current_id else None,
        }
        for key_id in ordered
    ]
