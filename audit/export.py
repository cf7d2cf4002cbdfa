"""The signed export: JSON Lines that `audit.offline_verify` checks without the portal.

Line 1 is a header with the public key; then the events in sequence order, each checkpoint right
after the event it signs; the last line is a trailer with the counts, so a cut-off file fails.
A time range exports the contiguous run of sequence numbers between its first and last event.
"""

import json
from collections.abc import Iterator
from datetime import datetime

from django.db.models import Max, Min
from django.utils import timezone

from audit import keys
from audit.chain import format_timestamp
from audit.models import AuditCheckpoint, AuditEvent
from audit.offline_verify import EXPORT_FORMAT

CHUNK = 5000


def _line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def export_lines(*, since: datetime | None = None, until: datetime | None = None) -> Iterator[str]:
    events = AuditEvent.objects.all()
    if since is not None:
        events = events.filter(occurred_at__gte=since)
    if until is not None:
        events = events.filter(occurred_at__lte=until)
    span = events.aggregate(first=Min("seq"), last=Max("seq"))
    first, last = span["first"], span["last"]
    yield _line(
        {
            "type": "header",
            "format": EXPORT_FORMAT,
            "exported_at": format_timestamp(timezone.now()),
            "since": format_timestamp(since) if since else None,
            "until": format_timestamp(until) if until else None,
            "key_id": keys.current_key_id(),
            "public_key": keys.public_key_pem(),
        }
    )
    counts = {"events": 0, "checkpoints": 0}
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
        for seq, occurred_at, prev_hash, hash_, body in rows:
            counts["events"] += 1
            yield _line(
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
                yield _line(
                    {
                        "type": "checkpoint",
                        "size": checkpoint.size,
                        "tip_hash": checkpoint.tip_hash,
                        "signature": checkpoint.signature,
                        "key_id": checkpoint.key_id,
                        "created_at": format_timestamp(checkpoint.created_at),
                    }
                )
    yield _line({"type": "end", **counts})
