"""Walks the stored chain and judges it: every hash, every link, the gapless sequence, the
queryable columns against the hashed body, and every signed checkpoint.

Hashes are recomputed here, in Python, from the rows the database returns, never by the database:
a database that lies must then return rows that chain up to checkpoints signed before the lie.

The walk works on the raw UTF-8 bytes of each row (on PostgreSQL straight from `COPY ... TO
STDOUT`), so that verifying a million events costs little more than hashing them. The rules are
those of `audit.chain.ChainWalk`, which the offline verifier uses.
"""

import hashlib
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from json.encoder import encode_basestring

from django.db import DEFAULT_DB_ALIAS, connections, router

from audit import keys
from audit.chain import GENESIS_HASH, checkpoint_message, format_timestamp
from audit.models import AuditCheckpoint, AuditEvent
from audit.offline_verify import signature_valid

CHUNK = 50_000
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
POSTGRES_COPY = (
    "COPY (SELECT seq, to_char(occurred_at AT TIME ZONE 'UTC', "
    '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\'), prev_hash, hash, body, actor_kind, actor_id, '
    "actor_name, action, object_type, object_id, object_repr, environment, data, request_id, "
    "coalesce(host(ip), ''), user_agent FROM audit_auditevent WHERE seq >= {low} AND seq <= {high} "
    "ORDER BY seq) TO STDOUT"
)
COPY_ESCAPE = re.compile(rb"\\(.)")
COPY_UNESCAPED = {b"t": b"\t", b"n": b"\n", b"r": b"\r", b"b": b"\b", b"f": b"\f", b"v": b"\v"}
# A string needs JSON escapes when it holds a quote, a backslash or a control character.
NEEDS_ESCAPE = re.compile(rb'[\x00-\x1f"\\]')
# The canonical body around `data`: RFC 8785 sorts keys, so the layout is fixed.
BODY_PREFIX = b'{"action":"%s","actor":{"id":"%s","kind":"%s","name":"%s"},"data":'
BODY_SUFFIX = (
    b',"environment":"%s","object":{"id":"%s","repr":"%s","type":"%s"},"occurred_at":"%s",'
    b'"request":{"id":"%s","ip":"%s","user_agent":"%s"},"seq":%s}'
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


def _copy_unescape(field: bytes) -> bytes:
    return COPY_ESCAPE.sub(lambda m: COPY_UNESCAPED.get(m.group(1), m.group(1)), field)


def _postgres_rows(alias: str, low: int, high: int) -> Iterator[list[bytes]]:
    """Rows as lists of UTF-8 fields, streamed by COPY in chunks of sequence numbers."""
    for start in range(low, high + 1, CHUNK):
        lines: list[bytes] = []
        sink = type("Sink", (), {"write": staticmethod(lines.append)})()
        with connections[alias].cursor() as cursor:
            cursor.copy_expert(
                POSTGRES_COPY.format(low=int(start), high=int(min(start + CHUNK - 1, high))),
                sink,
            )
        for line in lines:
            fields = line.rstrip(b"\n").split(b"\t")
            if b"\\" in line:
                fields = [_copy_unescape(field) for field in fields]
            yield fields


def _orm_rows(alias: str, low: int, high: int) -> Iterator[list[bytes]]:
    rows = (
        AuditEvent.objects.using(alias)
        .filter(seq__gte=low, seq__lte=high)
        .order_by("seq")
        .values_list(*COLUMNS)
        .iterator(chunk_size=5000)
    )
    for row in rows:
        values = [
            str(row[0]),
            format_timestamp(row[1]),
            *row[2:13],
            json.dumps(row[13], ensure_ascii=False),
            row[14],
            row[15] or "",
            row[16],
        ]
        yield [value.encode() for value in values]


def _json_string(value: bytes) -> bytes:
    return encode_basestring(value.decode()).encode()


def _copies_match(fields: list[bytes]) -> bool:
    """Fast check that the queryable columns say what the body says: rebuild the canonical text
    around `data` from the columns and compare bytes; compare `data` as parsed JSON. A False here
    only sends the row to the exact check in `_copies_problem`."""
    strings = (*fields[5:13], fields[1], *fields[14:17])
    if NEEDS_ESCAPE.search(b"".join(strings)):
        strings = tuple(_json_string(value)[1:-1] for value in strings)
    kind, actor_id, name, action, object_type, object_id, object_repr, environment = strings[:8]
    stamp, request_id, ip, user_agent = strings[8:]
    prefix = BODY_PREFIX % (action, actor_id, kind, name)
    suffix = BODY_SUFFIX % (
        environment,
        object_id,
        object_repr,
        object_type,
        stamp,
        request_id,
        ip,
        user_agent,
        fields[0],
    )
    body = fields[4]
    if len(body) < len(prefix) + len(suffix):
        return False
    if not (body.startswith(prefix) and body.endswith(suffix)):
        return False
    data = body[len(prefix) : len(body) - len(suffix)]
    return data == fields[13] or json.loads(data.decode()) == json.loads(fields[13].decode())


def _copies_problem(fields: list[bytes]) -> str:
    """The exact check: every queryable column against the parsed body, naming the culprits."""
    try:
        body = json.loads(fields[4])
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
    text = [field.decode() for field in fields]
    from_columns = (int(text[0]), text[1], *text[5:13], json.loads(text[13]), *text[14:17])
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
    are checked first). Stops at the first problem.

    Every read goes to one database, the one the router picks for audit reads (a replica outside
    a transaction, the primary inside one), so the walk sees one consistent trail."""
    started = time.monotonic()
    alias = router.db_for_read(AuditEvent) or DEFAULT_DB_ALIAS
    events = AuditEvent.objects.using(alias)
    public_key = keys.public_key()
    key_id = keys.key_id_of(public_key)
    # Checkpoints first, then the tail: a checkpoint beyond the tail then proves a truncation,
    # not a race with a checkpoint written while we read.
    checkpoints = list(AuditCheckpoint.objects.using(alias).order_by("size", "id"))
    tail = events.order_by("-seq").values_list("seq", "hash").first() or (0, "")
    expected, tip = 1, GENESIS_HASH.encode()
    verified_size = 0
    checked = 0
    count = 0
    try:
        if after is not None:
            problem = _check_checkpoint(after, key_id, public_key)
            anchor = events.filter(seq=after.size).values_list("hash", flat=True)
            if not problem and list(anchor) != [after.tip_hash]:
                problem = f"checkpoint #{after.pk} no longer matches event {after.size}"
            if problem:
                raise Broken(after.size, problem)
            expected, tip = after.size + 1, after.tip_hash.encode()
            verified_size = after.size
            checkpoints = [c for c in checkpoints if c.size > after.size]
        beyond = [c for c in checkpoints if c.size > tail[0]]
        pending: dict[int, list[AuditCheckpoint]] = {}
        for checkpoint in checkpoints:
            pending.setdefault(checkpoint.size, []).append(checkpoint)
        rows = _postgres_rows if connections[alias].vendor == "postgresql" else _orm_rows
        sha256 = hashlib.sha256
        for fields in rows(alias, expected, tail[0]):
            seq = int(fields[0])
            if seq != expected:
                raise Broken(
                    min(seq, expected),
                    f"events {expected}..{seq - 1} are missing"
                    if seq > expected
                    else f"sequence number {seq} where {expected} was expected",
                )
            if fields[2] != tip:
                raise Broken(seq, "prev_hash does not match the hash of the event before")
            stored = fields[3]
            material = b"\n".join((tip, fields[0], fields[1], fields[4]))
            if sha256(material).hexdigest().encode() != stored:
                raise Broken(seq, "hash does not match the event's contents")
            if not _copies_match(fields):
                problem = _copies_problem(fields)
                if problem:
                    raise Broken(seq, problem)
            expected, tip = seq + 1, stored
            count += 1
            if seq in pending:
                for checkpoint in pending[seq]:
                    problem = _check_checkpoint(checkpoint, key_id, public_key)
                    if not problem and checkpoint.tip_hash.encode() != stored:
                        problem = (
                            f"checkpoint #{checkpoint.pk} signed "
                            f"{checkpoint.created_at:%Y-%m-%d %H:%M} vouches for another hash at "
                            f"event {seq}: events {verified_size + 1}..{seq} were rewritten "
                            f"after it was signed"
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
            events=count,
            checkpoints=checked,
            tip_seq=tail[0],
            tip_hash=tail[1] or GENESIS_HASH,
            seconds=time.monotonic() - started,
            first_bad_seq=broken.seq,
            problem=broken.problem,
        )
    return Report(
        ok=True,
        events=count,
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
