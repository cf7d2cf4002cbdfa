"""The hash recipe of the audit chain.

Standard library only: the offline verifier imports this module without Django. Each event's hash
is sha256 over the previous hash, the sequence number, the timestamp and the stored canonical JSON
text, joined by newlines, exactly as stored, never re-serialised.
"""

import hashlib
from datetime import UTC, datetime

GENESIS_HASH = "0" * 64
CHECKPOINT_DOMAIN = "gatehouse-audit-checkpoint/v1"


def format_timestamp(moment: datetime) -> str:
    """The one textual form of an event time: UTC, microseconds, a trailing Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(prev_hash: str, seq: int, occurred_at: str, body: str) -> str:
    material = f"{prev_hash}\n{seq}\n{occurred_at}\n{body}".encode()
    return hashlib.sha256(material).hexdigest()


def checkpoint_message(size: int, tip_hash: str) -> bytes:
    """What a checkpoint signs: how many events the chain held and the hash of the last one."""
    return f"{CHECKPOINT_DOMAIN}\n{size}\n{tip_hash}".encode()
