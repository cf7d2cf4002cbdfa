"""Walks the stored chain and judges it: every hash, every link, the gapless sequence, the
queryable columns against the hashed body, and every signed checkpoint.

Hashes are recomputed here, in Python, from the rows the database returns, never by the database:
a database that lies must then return rows that chain up to checkpoints signed before the lie.
"""

import json
import time
from dataclasses import dataclass

from audit import signing
from audit.chain import GENESIS_HASH, ChainWalk, checkpoint_message, format_timestamp
from audit.models import AuditCheckpoint, AuditEvent
from audit.offline_verify import signature_valid

CHUNK = 5000
COLUMNS = (
    "seq",
    "occurred_at",
    "prev_hash",
    "hash",
    "body",
    "actor_kind",
    "actor_id",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "environment",
    "data",
    "request_id",
    "ip",
    "user_agent",
)


@dataclass
class Report:
    ok: bool
    events: int
    checkpoints: int
    tip_seq: int
    tip_hash: str
    seconds: float
    first_bad_seq: int | None = None
    problem: str = ""

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


class Broken(Exception):
    def __init__(self, seq: int, problem: str):
        super().__init__(problem)
        self.seq = seq
        self.problem = problem


def _copies_problem(row: tuple, stamp: str) -> str:
    """The columns people filter on must say what the hashed body says."""
    try:
        body = json.loads(row[4])
        actor, target, request = body["actor"], body["object"], body["request"]
        from_body = (
            body["seq"],
            body["occurred_at"],
            actor["kind"],
            actor["id"],
            actor["name"],
            body["action"],
            target["type"],
            target["id"],
            target["repr"],
            body["environment"],
            body["data"],
            request["id"],
            request["ip"],
            request["user_agent"],
        )
    except (ValueError, KeyError, TypeError):
        return "body is not a complete event"
    from_columns = (row[0], stamp, *row[5:15], row[15] or "", row[16])
    if from_body != from_columns:
        names = ("seq", "occurred_at", *COLUMNS[5:])
        differing = [n for n, a, b in zip(names, from_body, from_columns, strict=True) if a != b]
        return f"columns differ from the hashed body: {', '.join(differing)}"
    return ""


def _check_checkpoint(checkpoint: AuditCheckpoint, key_id: str, public_key) -> str:
    if checkpoint.key_id != key_id:
        return f"checkpoint #{checkpoint.pk} is signed with unknown key {checkpoint.key_id}"
    message = checkpoint_message(checkpoint.size, checkpoint.tip_hash)
    if not signature_valid(public_key, message, checkpoint.signature):
        return f"checkpoint #{checkpoint.pk} at {checkpoint.size} has an invalid signature"
    return ""


def verify_chain(*, after: AuditCheckpoint | None = None) -> Report:
    """Verify the whole chain, or only the events after a checkpoint (whose own signature and tip
    are checked first). Stops at the first problem."""
    started = time.monotonic()
    public_key = signing.public_key()
    key_id = signing.key_id_of(public_key)
    # Checkpoints first, then the tail: a checkpoint beyond the tail then proves a truncation,
    # not a race with a checkpoint written while we read.
    checkpoints = list(AuditCheckpoint.objects.order_by("size", "id"))
    tail = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first() or (0, "")
    walk = ChainWalk()
    verified_size = 0
    checked = 0
    try:
        if after is not None:
            problem = _check_checkpoint(after, key_id, public_key)
            anchor = AuditEvent.objects.filter(seq=after.size).values_list("hash", flat=True)
            if not problem and list(anchor) != [after.tip_hash]:
                problem = f"checkpoint #{after.pk} no longer matches event {after.size}"
            if problem:
                raise Broken(after.size, problem)
            walk = ChainWalk(start_seq=after.size + 1, prev_hash=after.tip_hash)
            verified_size = after.size
            checkpoints = [c for c in checkpoints if c.size > after.size]
        beyond = [c for c in checkpoints if c.size > tail[0]]
        pending = {}
        for checkpoint in checkpoints:
            pending.setdefault(checkpoint.size, []).append(checkpoint)
        rows = (
            AuditEvent.objects.filter(seq__gte=walk.expected_seq, seq__lte=tail[0])
            .order_by("seq")
            .values_list(*COLUMNS)
            .iterator(chunk_size=CHUNK)
        )
        for row in rows:
            seq = row[0]
            stamp = format_timestamp(row[1])
            problem = walk.add(seq, stamp, row[2], row[3], row[4]) or _copies_problem(row, stamp)
            if problem:
                raise Broken(walk.bad_seq or seq, problem)
            for checkpoint in pending.get(seq, ()):
                problem = _check_checkpoint(checkpoint, key_id, public_key)
                if not problem and checkpoint.tip_hash != row[3]:
                    problem = (
                        f"checkpoint #{checkpoint.pk} signed {checkpoint.created_at:%Y-%m-%d %H:%M}"
                        f" vouches for another hash at event {seq}: events "
                        f"{verified_size + 1}..{seq} were rewritten after it was signed"
                    )
                if problem:
                    raise Broken(verified_size + 1, problem)
                checked += 1
                verified_size = seq
        if beyond:
            raise Broken(
                tail[0] + 1,
                f"the chain ends at {tail[0]} but checkpoint #{beyond[0].pk} vouches for "
                f"{beyond[0].size} events: the end of the trail was deleted",
            )
    except Broken as broken:
        return Report(
            ok=False,
            events=walk.count,
            checkpoints=checked,
            tip_seq=tail[0],
            tip_hash=tail[1] or GENESIS_HASH,
            seconds=time.monotonic() - started,
            first_bad_seq=broken.seq,
            problem=broken.problem,
        )
    return Report(
        ok=True,
        events=walk.count,
        checkpoints=checked,
        tip_seq=tail[0],
        tip_hash=tail[1] or GENESIS_HASH,
        seconds=time.monotonic() - started,
    )


def describe(report: Report) -> str:
    verdict = "intact" if report.ok else f"BROKEN: {report.problem}"
    return (
        f"{report.events} events, {report.checkpoints} checkpoints checked in "
        f"{report.seconds:.2f} s ({report.events_per_second:,.0f} events/s): {verdict}"
    )
