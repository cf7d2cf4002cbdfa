"""The one exporter of the audit trail: `manage.py audit_export`, `GET /api/v1/audit/export/`
and the auditor page's JSON Lines download all stream `export_lines`, and
`python -m audit.offline_verify` checks the result without the portal.

Line 1 is a header with the public key, the key rotations that tie retired keys to it, and for a
partial export the first sequence number and the Merkle frontier of the events before it. Then
the events in sequence order, each checkpoint right after the event it signs. Then a head signed
at export time over the last exported event, with the trail's head at export time and the
consistency proof between the two, so a range cannot be cut short, made up or edited unnoticed.
The last line is a trailer with the counts and a signature over every line before it, so no line
can be removed either.

A time range exports the contiguous run of sequence numbers between its first and last event.
"""

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Max, Min
from django.utils import timezone

from audit import keys
from audit.chain import export_seal_message, format_timestamp, tree_head_message
from audit.merkle import MerkleTree, leaf_of
from audit.models import AuditCheckpoint, AuditEvent
from audit.offline_verify import EXPORT_FORMAT
from audit.services import verified_since_latest_head
from portal.exceptions import Conflict

CHUNK = 5000


@dataclass
class _Plan:
    since: datetime | None
    until: datetime | None
    first: int | None
    last: int | None
    tree: MerkleTree
    trail_tip: str


def _line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def signed_head(tree: MerkleTree, size: int, tip_hash: str) -> dict:
    root = tree.root(size).hex()
    return {
        "size": size,
        "tip_hash": tip_hash,
        "root": root,
        "key_id": keys.current_key_id(),
        "signature": keys.sign(tree_head_message(size, tip_hash, root)),
    }


def verified_tree() -> tuple[MerkleTree, str]:
    """The Merkle tree over the whole trail and its tip hash, once the events since the latest
    signed head verify and the stored hashes give that head's root: what may be signed now.
    Raises `Conflict` (`chain_broken`) otherwise. Exports and evidence packs sign from it."""
    report = verified_since_latest_head()
    size = report.tip_seq
    hashes = (
        AuditEvent.objects.filter(seq__lte=size)
        .order_by("seq")
        .values_list("hash", flat=True)
        .iterator(chunk_size=CHUNK)
    )
    tree = MerkleTree(leaf_of(event_hash) for event_hash in hashes)
    # The walk continued the tree from the latest signed frontier over verified events: a hash
    # column rewritten before that checkpoint gives another root here.
    if tree.size != size or tree.root() != report.frontier.root():
        raise Conflict(
            "The stored event hashes do not give the signed Merkle root, so nothing is signed or "
            "exported. Run `manage.py audit_verify` to find the first bad event, and see "
            "docs/audit.md (Verification and checkpoints).",
            code="chain_broken",
        )
    return tree, report.tip_hash


def _plan(since: datetime | None, until: datetime | None) -> _Plan:
    """Everything an export needs before its first line, so that a trail that does not verify
    is refused (`chain_broken`) before anything is sent, never signed."""
    tree, tip_hash = verified_tree()
    events = AuditEvent.objects.filter(seq__lte=tree.size)
    if since is not None:
        events = events.filter(occurred_at__gte=since)
    if until is not None:
        events = events.filter(occurred_at__lte=until)
    span = events.aggregate(first=Min("seq"), last=Max("seq"))
    return _Plan(since, until, span["first"], span["last"], tree, tip_hash)


def export_lines(*, since: datetime | None = None, until: datetime | None = None) -> Iterator[str]:
    """The export, line by line. Verifies and plans at once (raising `Conflict` when the trail
    does not verify); streams the events when iterated."""
    return _lines(_plan(since, until))


def _lines(plan: _Plan) -> Iterator[str]:
    first, last, tree = plan.first, plan.last, plan.tree
    digest = hashlib.sha256()
    counts = {"events": 0, "checkpoints": 0}

    def emit(record: dict) -> str:
        line = _line(record)
        digest.update(line.encode())
        return line

    yield emit(
        {
            "type": "header",
            "format": EXPORT_FORMAT,
            "exported_at": format_timestamp(timezone.now()),
            "since": format_timestamp(plan.since) if plan.since else None,
            "until": format_timestamp(plan.until) if plan.until else None,
            "key_id": keys.current_key_id(),
            "public_key": keys.public_key_pem(),
            "rotations": keys.rotation_records(),
            "first_seq": first,
            "prefix": tree.frontier(first - 1).to_hex() if first else [],
        }
    )
    if first is not None:
        checkpoints: dict[int, list[AuditCheckpoint]] = {}
        for checkpoint in AuditCheckpoint.objects.filter(size__gte=first, size__lte=last).order_by(
            "size", "id"
        ):
            checkpoints.setdefault(checkpoint.size, []).append(checkpoint)
        rows = (
            AuditEvent.objects.filter(seq__gte=first, seq__lte=last)
            .order_by("seq")
            .values_list("seq", "occurred_at", "prev_hash", "hash", "body")
            .iterator(chunk_size=CHUNK)
        )
        last_hash = ""
        for seq, occurred_at, prev_hash, hash_, body in rows:
            counts["events"] += 1
            last_hash = hash_
            yield emit(
                {
                    "type": "event",
                    "seq": seq,
                    "occurred_at": format_timestamp(occurred_at),
                    "prev_hash": prev_hash,
                    "hash": hash_,
                    "body": body,
                }
            )
            for checkpoint in checkpoints.get(seq, ()):
                counts["checkpoints"] += 1
                yield emit(_checkpoint_record(checkpoint))
        trail = signed_head(tree, tree.size, plan.trail_tip)
        trail["consistency"] = [node.hex() for node in tree.consistency_proof(last)]
        yield emit(
            {
                "type": "head",
                **signed_head(tree, last, last_hash),
                "signed_at": format_timestamp(timezone.now()),
                "trail": trail,
            }
        )
    seal = digest.hexdigest()
    yield _line(
        {"type": "end", **counts, "digest": seal, "signature": keys.sign(export_seal_message(seal))}
    )


def _checkpoint_record(checkpoint: AuditCheckpoint) -> dict:
    record = {
        "type": "checkpoint",
        "size": checkpoint.size,
        "tip_hash": checkpoint.tip_hash,
        "signature": checkpoint.signature,
        "key_id": checkpoint.key_id,
        "created_at": format_timestamp(checkpoint.created_at),
    }
    if checkpoint.merkle_root:
        record["root"] = checkpoint.merkle_root
    return record
