"""The hash recipe of the audit chain.

Standard library only: the offline verifier imports this module without Django. Each event's hash
is sha256 over the previous hash, the sequence number, the timestamp and the stored canonical JSON
text, joined by newlines, exactly as stored, never re-serialised.
"""

import hashlib
from datetime import UTC, datetime

GENESIS_HASH = "0" * 64
CHECKPOINT_DOMAIN = "gatehouse-audit-checkpoint/v1"
TREE_HEAD_DOMAIN = "gatehouse-audit-tree-head/v1"
EVIDENCE_DOMAIN = "gatehouse-evidence-pack/v1"
KEY_ROTATION_DOMAIN = "gatehouse-audit-key-rotation/v1"
EXPORT_SEAL_DOMAIN = "gatehouse-audit-export-seal/v1"


def format_timestamp(moment: datetime) -> str:
    """The one textual form of an event time: UTC, microseconds, a trailing Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(prev_hash: str, seq: int, occurred_at: str, body: str) -> str:
    material = f"{prev_hash}\n{seq}\n{occurred_at}\n{body}".encode()
    return hashlib.sha256(material).hexdigest()


def checkpoint_message(size: int, tip_hash: str) -> bytes:
    """What a checkpoint signed before checkpoints carried a Merkle root: how many events the
    chain held and the hash of the last one. Still verified for the checkpoints signed so."""
    return f"{CHECKPOINT_DOMAIN}\n{size}\n{tip_hash}".encode()


def tree_head_message(size: int, tip_hash: str, root: str) -> bytes:
    """What a signed tree head signs: the chain's size, the hash of its last event, and the root
    of the Merkle tree over its event hashes (`audit.merkle`), all hex."""
    return f"{TREE_HEAD_DOMAIN}\n{size}\n{tip_hash}\n{root}".encode()


def key_rotation_message(
    old_key_id: str, old_public_hex: str, new_key_id: str, new_public_hex: str, rotated_at: str
) -> bytes:
    """What both keys of a rotation sign: each vouches for the other, so trust in either one
    (a pinned old key, or the portal's current key) extends to both."""
    return (
        f"{KEY_ROTATION_DOMAIN}\n{old_key_id}\n{old_public_hex}\n{new_key_id}\n"
        f"{new_public_hex}\n{rotated_at}"
    ).encode()


def evidence_manifest_message(files: dict[str, str], root: str) -> bytes:
    """What an evidence pack's manifest signs: the sha256 of each file in the pack, by name, and
    the Merkle root its events are proved against, so no file can be swapped or edited."""
    listed = "\n".join(f"{name} {digest}" for name, digest in sorted(files.items()))
    return f"{EVIDENCE_DOMAIN}\n{root}\n{listed}".encode()


def export_seal_message(digest: str) -> bytes:
    """What an export's last line signs: sha256 over every line before it."""
    return f"{EXPORT_SEAL_DOMAIN}\n{digest}".encode()


class ChainWalk:
    """Checks events in sequence order: gapless numbering, each link to the previous hash, and
    each hash recomputed from the stored text. Shared by `audit_verify` and the offline verifier
    so both judge a chain by the same rules.

    A walk may start in the middle of the chain (an export of a time range): it then trusts the
    first event's link, which only a signed checkpoint can vouch for.
    """

    def __init__(self, *, start_seq: int | None = 1, prev_hash: str | None = GENESIS_HASH):
        self.expected_seq = start_seq
        self.tip_hash = prev_hash
        self.count = 0
        self.bad_seq: int | None = None

    def add(self, seq: int, occurred_at: str, prev_hash: str, stored_hash: str, body: str) -> str:
        """The problem with this event, or "" when it fits the chain. On a problem, `bad_seq` is
        the first sequence number that is wrong (for a gap, the first missing one)."""
        expected = self.expected_seq
        if expected is not None and seq != expected:
            self.bad_seq = min(seq, expected)
            if seq > expected:
                return f"events {expected}..{seq - 1} are missing"
            return f"sequence number {seq} where {expected} was expected"
        self.bad_seq = seq
        if self.tip_hash is not None and prev_hash != self.tip_hash:
            return "prev_hash does not match the hash of the event before"
        if event_hash(prev_hash, seq, occurred_at, body) != stored_hash:
            return "hash does not match the event's contents"
        self.bad_seq = None
        self.expected_seq = seq + 1
        self.tip_hash = stored_hash
        self.count += 1
        return ""
