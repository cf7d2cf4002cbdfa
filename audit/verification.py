"""Walks the stored chain and judges it: every hash, every link, the gapless sequence, the
queryable columns against the hashed body, every signed tree head (checkpoint) and, when asked,
every head a witness holds; and that the trail never got shorter than it was.

The walk grows the Merkle tree over the event hashes as it goes (`audit.merkle.Frontier`, one leaf
hash and on average one node hash per event) and compares the root at each checkpoint's size with
the signed one. Every root comes from the same sequence of leaves, so each checkpoint is checked
to be a prefix of the next: the consistency that a proof shows to someone without the events.

Hashes are recomputed here, in Python, from the rows the database returns, never by the database:
a database that lies must then return rows that chain up to checkpoints signed before the lie.

The walk works on the raw UTF-8 bytes of each row. On PostgreSQL they stream from `COPY ... TO
STDOUT` straight into the walk, one row per call, so the server produces the next rows while
Python checks this one. The rules are those of `audit.chain.ChainWalk`, which the offline
verifier uses.

The two processes share the checks of the queryable columns. Python lays the twelve text columns
out as the canonical body does and compares bytes; PostgreSQL compares `data` (jsonb) with the
JSON between those two stretches of the body, and sends `data` only where it finds another value
or cannot cut it out (a body with a JSON escape). Parsing that JSON is what a row costs most on
either side, and the server has the cycles to spare while Python hashes. Taking the server's
word for that comparison, and never for a hash, is sound: the columns are an index over the
hashed body, what this check catches is a copy changed without the body, and every column
reaches the walk through the server anyway, so a server that lied here could as well lie about
the column itself; it still could not make the hashes chain up to the signed checkpoints. Its
word counts only for a row whose other columns Python finds laid out exactly where the server cut
`data` from; any other row (an edited column, an edited body the server cannot parse) is read
again with `data`, and checked here.
"""

import hashlib
import json
import re
import time
from binascii import hexlify
from dataclasses import dataclass
from json.encoder import encode_basestring

from django.db import DEFAULT_DB_ALIAS, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from audit import keys
from audit.chain import GENESIS_HASH, checkpoint_message, format_timestamp, tree_head_message
from audit.merkle import Frontier
from audit.models import AuditCheckpoint, AuditEvent, AuditVerification
from audit.offline_verify import signature_valid
from audit.witness import WitnessedHead

# Rows per COPY statement: a walk that stops early reads at most this many rows past the problem.
CHUNK = 50_000
# The twelve text columns first, in the order the canonical body lays them out (RFC 8785 sorts
# keys), so that the copies check formats them around `data` in one go; `seq` last, so that the
# end of the line costs one short slice.
COLUMNS = (
    "action",
    "actor_id",
    "actor_kind",
    "actor_name",
    "environment",
    "object_id",
    "object_repr",
    "object_type",
    "occurred_at",
    "request_id",
    "ip",
    "user_agent",
    "prev_hash",
    "hash",
    "body",
    "data",
    "seq",
)
OCCURRED_AT, IP, TEXT, PREV_HASH, HASH, BODY, DATA, SEQ = 8, 10, 12, 12, 13, 14, 15, 16
COPY_ESCAPE = re.compile(rb"\\(.)")
COPY_UNESCAPED = {b"t": b"\t", b"n": b"\n", b"r": b"\r", b"b": b"\b", b"f": b"\f", b"v": b"\v"}
# A string needs JSON escapes when it holds a quote, a backslash or a control character.
NEEDS_ESCAPE = re.compile(rb'[\x00-\x1f"\\]')
BODY_PREFIX = b'{"action":"%s","actor":{"id":"%s","kind":"%s","name":"%s"},"data":'
BODY_SUFFIX = (
    b',"environment":"%s","object":{"id":"%s","repr":"%s","type":"%s"},"occurred_at":"%s",'
    b'"request":{"id":"%s","ip":"%s","user_agent":"%s"},"seq":%s}'
)
PREFIX_BYTES = len(BODY_PREFIX.replace(b"%s", b""))
SUFFIX_BYTES = len(BODY_SUFFIX.replace(b"%s", b""))
# The bytes of the layout around the twelve text columns, less the tabs between them in a line.
LAYOUT = PREFIX_BYTES + SUFFIX_BYTES - (TEXT - 1)
# The twelve text columns as PostgreSQL gives them, in the order of `COLUMNS`.
POSTGRES_TEXT = (
    *COLUMNS[:OCCURRED_AT],
    "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    "request_id",
    "coalesce(host(ip), '')",
    "user_agent",
)


def _octets(columns: tuple[str, ...]) -> str:
    return " + ".join(f"octet_length({column})" for column in columns)


# `data` as the body holds it, cut out where the body lays it out when every text column goes into
# JSON as it is: after the layout of the first four columns, before that of the rest and `seq`.
# A body without a backslash has no JSON escape, so its columns, if they are what it says, are
# exactly that long. The time is taken to be as long as `format_timestamp` makes it, rather than
# formatted twice; `_Walk.write` takes the server's word only for a row where it is.
TIME_BYTES = len("2026-12-01T13:59:02.782453Z")
BEFORE_DATA = POSTGRES_TEXT[:4]
AFTER_DATA = POSTGRES_TEXT[4:OCCURRED_AT] + POSTGRES_TEXT[OCCURRED_AT + 1 :]
BODY_DATA = (
    "convert_from(substring(convert_to(body, 'UTF8') "
    f"FROM {_octets(BEFORE_DATA)} + {PREFIX_BYTES + 1} "
    f"FOR octet_length(body) - ({_octets(BEFORE_DATA + AFTER_DATA)}) - octet_length(seq::text) "
    f"- {PREFIX_BYTES + TIME_BYTES + SUFFIX_BYTES}), 'UTF8')"
)
# `data`, or nothing when the server found the same JSON value in the body (see the module doc).
DATA_UNLESS_IN_BODY = (
    f"CASE WHEN strpos(body, chr(92)) = 0 AND {BODY_DATA}::jsonb = data THEN '' ELSE data::text END"
)
POSTGRES_COPY = (
    "COPY (SELECT {text}, prev_hash, hash, body, {data}, seq FROM audit_auditevent "
    "WHERE seq >= {low} AND seq <= {high} ORDER BY seq) TO STDOUT"
)
# What may not stand unescaped in a JSON string, except the tab between columns, as a
# `bytes.translate` table that turns it into NUL: one pass in C, faster than a regex search.
ESCAPED = set(b'"\\' + bytes(range(0x20))) - {ord("\t")}
UNESCAPED = bytes(0 if byte in ESCAPED else 1 for byte in range(256))
_decode = json.JSONDecoder().raw_decode
HASH_PROBLEM = "hash does not match the event's contents"


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
    witnessed: int = 0
    frontier: Frontier | None = None

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


class Broken(Exception):
    def __init__(self, seq: int, problem: str):
        super().__init__(problem)
        self.seq = seq
        self.problem = problem


class _Recheck(Exception):
    """The server vouched for a row's `data`, but the row's columns do not lay its body out as
    the server took them to: its word is about another part of the body, so the walk reads the
    row again with `data` itself."""


def _copy_unescape(field: bytes) -> bytes:
    return COPY_ESCAPE.sub(lambda m: COPY_UNESCAPED.get(m.group(1), m.group(1)), field)


def _json_string(value: bytes) -> bytes:
    return encode_basestring(value.decode()).encode()


def _same_json(left: bytes, right: bytes) -> bool:
    """Whether two texts are each exactly one JSON value, and the same value. Calls the decoder
    itself: `json.loads` spends more time guessing the encoding than parsing a small object."""
    try:
        left_text, right_text = left.decode(), right.decode()
        left_value, left_end = _decode(left_text)
        right_value, right_end = _decode(right_text)
    except ValueError:
        return False
    return left_end == len(left_text) and right_end == len(right_text) and left_value == right_value


def _laid_out(body: bytes, prefix: bytes, suffix: bytes, data: bytes | None) -> bool:
    """Fast check that the queryable columns say what the body says: `prefix` and `suffix` are
    the columns laid out as the canonical body lays them out around `data`, compared as bytes;
    `data` is compared as parsed JSON (PostgreSQL lays jsonb out its own way), unless it is None:
    the server compared it already. A False here only sends the row to the exact check in
    `_copies_problem`."""
    end = len(body) - len(suffix)
    return (
        len(prefix) <= end
        and body.startswith(prefix)
        and body.endswith(suffix)
        and (data is None or _same_json(body[len(prefix) : end], data))
    )


def _copies_problem(fields: list[bytes]) -> str:
    """The exact check: every queryable column against the parsed body, naming the culprits."""
    try:
        body = json.loads(fields[BODY])
        actor, target, request = body["actor"], body["object"], body["request"]
        from_body = {
            "action": body["action"],
            "actor_id": actor["id"],
            "actor_kind": actor["kind"],
            "actor_name": actor["name"],
            "environment": body["environment"],
            "object_id": target["id"],
            "object_repr": target["repr"],
            "object_type": target["type"],
            "occurred_at": body["occurred_at"],
            "request_id": request["id"],
            "ip": request["ip"],
            "user_agent": request["user_agent"],
            "seq": body["seq"],
            "data": body["data"],
        }
    except (ValueError, KeyError, TypeError):
        return "body is not a complete event"
    columns = {name: field.decode() for name, field in zip(COLUMNS, fields, strict=True)}
    columns["seq"], columns["data"] = int(columns["seq"]), json.loads(columns["data"])
    differing = [name for name, value in from_body.items() if columns[name] != value]
    if differing:
        return f"columns differ from the hashed body: {', '.join(differing)}"
    return ""


def signed_message(checkpoint: AuditCheckpoint) -> bytes:
    """A tree head, or the size and tip a checkpoint signed before checkpoints had roots."""
    if checkpoint.merkle_root:
        return tree_head_message(checkpoint.size, checkpoint.tip_hash, checkpoint.merkle_root)
    return checkpoint_message(checkpoint.size, checkpoint.tip_hash)


def _check_checkpoint(checkpoint: AuditCheckpoint, ring: dict) -> str:
    public_key = ring.get(checkpoint.key_id)
    if public_key is None:
        return f"checkpoint #{checkpoint.pk} is signed with unknown key {checkpoint.key_id}"
    if not signature_valid(public_key, signed_message(checkpoint), checkpoint.signature):
        return f"checkpoint #{checkpoint.pk} at {checkpoint.size} has an invalid signature"
    return ""


def _check_witnessed(head: WitnessedHead, ring: dict) -> str:
    public_key = ring.get(head.key_id)
    message = tree_head_message(head.size, head.tip_hash, head.root)
    if (
        head.size < 1
        or public_key is None
        or not signature_valid(public_key, message, head.signature)
    ):
        return f"the witness file {head.source} is not a head signed with a key of the portal"
    return ""


class _Walk:
    """The walk along the chain in sequence order, raising `Broken` at the first problem: the
    sink of `COPY ... TO STDOUT`, which calls `write` once per row, and `add` for a row as the
    fields of `COLUMNS` (UTF-8 bytes, unescaped).

    Each row is checked as it comes, in the order of `audit.chain.ChainWalk`: sequence number,
    link, hash, then the copies. Its hash waits in `digests` to join the Merkle tree with the
    rows after it (`Frontier.extend`): at the end of each COPY, at each signed or witnessed size,
    and at the end of the walk."""

    def __init__(
        self,
        *,
        frontier: Frontier,
        tip: str,
        checkpoints: list[AuditCheckpoint],
        ring: dict,
        witnessed: list[WitnessedHead] = (),
    ):
        self.start = frontier.size
        self.expected = frontier.size + 1
        self.tip = tip.encode()
        self.frontier = frontier
        self.digests: list[bytes] = []
        self.verified_size = frontier.size
        self.checked = 0
        self.ring = ring
        self.pending: dict[int, list[AuditCheckpoint]] = {}
        for checkpoint in checkpoints:
            self.pending.setdefault(checkpoint.size, []).append(checkpoint)
        self.witnessed: dict[int, list[WitnessedHead]] = {}
        for head in witnessed:
            self.witnessed.setdefault(head.size, []).append(head)
        self.witnessed_size = frontier.size
        self.witnessed_count = 0
        # The sizes where a root is compared, soonest last; `stop` is the next one.
        self.stops = sorted(
            {size for size in (*self.pending, *self.witnessed) if size >= self.expected},
            reverse=True,
        )
        self.stop = self.stops.pop() if self.stops else 0

    @property
    def count(self) -> int:
        """Events that passed every check of their own row."""
        return self.expected - 1 - self.start

    def write(self, line: bytes, sha256=hashlib.sha256, hexed=hexlify, unescaped=UNESCAPED) -> None:
        """One line of COPY text. Without a backslash there is no COPY escape in it, hence no
        JSON escape in the body or in `data` either, and the text columns must go into JSON as
        they are: a quote or a control character among them sends the row to the exact check
        (through `_Recheck` when the server vouched for its `data`)."""
        if b"\\" in line:
            self.add([_copy_unescape(field) for field in line[:-1].split(b"\t")])
            return
        fields = line.split(b"\t")
        (
            action, actor_id, actor_kind, actor_name, environment, object_id, object_repr,
            object_type, occurred_at, request_id, ip, user_agent, prev_hash, stored, body, data,
            seq_line,
        ) = fields  # fmt: skip
        seq_text = seq_line[:-1]
        seq = int(seq_text)
        if seq != self.expected or prev_hash != self.tip:
            self._broken_link(seq)
        digest = sha256(b"\n".join((prev_hash, seq_text, occurred_at, body))).digest()
        if hexed(digest) != stored:
            raise Broken(seq, HASH_PROBLEM)
        prefix = BODY_PREFIX % (action, actor_id, actor_kind, actor_name)
        suffix = BODY_SUFFIX % (
            environment, object_id, object_repr, object_type, occurred_at, request_id, ip,
            user_agent, seq_text,
        )  # fmt: skip
        # The text columns open the line, as long as their values in the layout, with tabs.
        text_end = len(prefix) + len(suffix) - len(seq_text) - LAYOUT
        if not (
            _laid_out(body, prefix, suffix, data or None)
            and b"\0" not in line[:text_end].translate(unescaped)
            and (data or len(occurred_at) == TIME_BYTES)
        ):
            if not data:
                raise _Recheck
            fields[SEQ] = seq_text
            self._exact(seq, fields)
        self.expected, self.tip = seq + 1, stored
        self.digests.append(digest)
        if seq == self.stop:
            self._stop_at(seq)

    def add(self, fields: list[bytes], sha256=hashlib.sha256, hexed=hexlify) -> None:
        """Check one row whose text columns may need JSON escapes (or come from the ORM)."""
        if not fields[DATA]:
            raise _Recheck
        seq_text, prev_hash, stored = fields[SEQ], fields[PREV_HASH], fields[HASH]
        seq = int(seq_text)
        if seq != self.expected or prev_hash != self.tip:
            self._broken_link(seq)
        body = fields[BODY]
        digest = sha256(b"\n".join((prev_hash, seq_text, fields[OCCURRED_AT], body))).digest()
        if hexed(digest) != stored:
            raise Broken(seq, HASH_PROBLEM)
        text = fields[:TEXT]
        if NEEDS_ESCAPE.search(b"".join(text)):
            text = [_json_string(value)[1:-1] for value in text]
        prefix = BODY_PREFIX % tuple(text[:4])
        suffix = BODY_SUFFIX % (*text[4:], seq_text)
        if not _laid_out(body, prefix, suffix, fields[DATA]):
            self._exact(seq, fields)
        self.expected, self.tip = seq + 1, stored
        self.digests.append(digest)
        if seq == self.stop:
            self._stop_at(seq)

    def _broken_link(self, seq: int) -> None:
        expected = self.expected
        if seq > expected:
            raise Broken(expected, f"events {expected}..{seq - 1} are missing")
        if seq < expected:
            raise Broken(seq, f"sequence number {seq} where {expected} was expected")
        raise Broken(seq, "prev_hash does not match the hash of the event before")

    @staticmethod
    def _exact(seq: int, fields: list[bytes]) -> None:
        problem = _copies_problem(fields)
        if problem:
            raise Broken(seq, problem)

    def grow(self, sha256=hashlib.sha256) -> None:
        """The Merkle tree over every event checked so far."""
        self.frontier.extend([sha256(b"\x00" + digest).digest() for digest in self.digests])
        self.digests = []

    def _stop_at(self, seq: int) -> None:
        self.grow()
        root = self.frontier.root().hex()
        stored = self.tip
        if seq in self.pending:
            self._checkpoints_at(seq, stored, root)
        if seq in self.witnessed:
            self._witnessed_at(seq, stored, root)
        self.stop = self.stops.pop() if self.stops else 0

    def _checkpoints_at(self, seq: int, stored: bytes, root: str) -> None:
        for checkpoint in self.pending.pop(seq):
            problem = _check_checkpoint(checkpoint, self.ring)
            if not problem and (
                checkpoint.tip_hash.encode() != stored or checkpoint.merkle_root not in ("", root)
            ):
                problem = (
                    f"checkpoint #{checkpoint.pk} signed "
                    f"{checkpoint.created_at:%Y-%m-%d %H:%M} vouches for another hash at "
                    f"event {seq}: events {self.verified_size + 1}..{seq} were rewritten "
                    f"after it was signed"
                )
            if problem:
                raise Broken(self.verified_size + 1, problem)
            self.checked += 1
        self.verified_size = seq

    def _witnessed_at(self, seq: int, stored: bytes, root: str) -> None:
        for head in self.witnessed.pop(seq):
            if head.tip_hash.encode() != stored or head.root != root:
                raise Broken(
                    self.witnessed_size + 1,
                    f"the chain is inconsistent with the witnessed checkpoint at {seq} "
                    f"({head.source}): events {self.witnessed_size + 1}..{seq} were rewritten "
                    f"after the witness received it",
                )
            self.witnessed_count += 1
        self.witnessed_size = seq


def _walk_postgres(walk: _Walk, alias: str, high: int) -> None:
    """Stream the rows into the walk by COPY, in chunks of sequence numbers, the server comparing
    `data` with the body. Where it cannot cut `data` out of a body (an edited one: the cast
    fails) or should not have (`_Recheck`), the rest of the chunk comes again with `data`."""
    connection = connections[alias]
    for low in range(walk.expected, high + 1, CHUNK):
        last = min(low + CHUNK - 1, high)
        try:
            _copy(connection, walk, low, last, DATA_UNLESS_IN_BODY)
        except (_Recheck, connection.Database.DatabaseError):
            _copy(connection, walk, walk.expected, last, "data::text")
        walk.grow()


def _copy(connection: BaseDatabaseWrapper, walk: _Walk, low: int, high: int, data: str) -> None:
    sql = POSTGRES_COPY.format(
        text=", ".join(POSTGRES_TEXT), data=data, low=int(low), high=int(high)
    )
    # In a transaction, or a savepoint inside one, so that a COPY that fails leaves it usable.
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.copy_expert(sql, walk)


def _walk_orm(walk: _Walk, alias: str, high: int) -> None:
    rows = (
        AuditEvent.objects.using(alias)
        .filter(seq__gte=walk.expected, seq__lte=high)
        .order_by("seq")
        .values_list(*COLUMNS)
        .iterator(chunk_size=5000)
    )
    for row in rows:
        values = list(row)
        values[OCCURRED_AT] = format_timestamp(values[OCCURRED_AT])
        values[IP] = values[IP] or ""
        values[SEQ] = str(values[SEQ])
        values[DATA] = json.dumps(values[DATA], ensure_ascii=False)
        walk.add([value.encode() for value in values])
    walk.grow()


def _frontier_of(checkpoint: AuditCheckpoint) -> Frontier:
    """The tree a checkpoint stored, which must have the root it signed."""
    try:
        frontier = Frontier.from_hex(checkpoint.size, checkpoint.frontier.split())
    except ValueError as error:
        raise Broken(
            checkpoint.size, f"checkpoint #{checkpoint.pk} has no usable frontier"
        ) from error
    if frontier.root().hex() != checkpoint.merkle_root:
        raise Broken(
            checkpoint.size, f"checkpoint #{checkpoint.pk}'s frontier is not the tree it signed"
        )
    return frontier


def _truncation(alias: str, tail: int, checkpoints: list[AuditCheckpoint]) -> None:
    """The trail never gets shorter: not than any checkpoint, nor any verification that passed
    (the high-water mark). Deleting the newest events together with their checkpoint still
    leaves the run that verified them."""
    beyond = [c for c in checkpoints if c.size > tail]
    if beyond:
        raise Broken(
            tail + 1,
            f"the trail was truncated: it ends at {tail} but checkpoint #{beyond[0].pk} vouches "
            f"for {beyond[0].size} events: the end of the trail was deleted",
        )
    mark = (
        AuditVerification.objects.using(alias)
        .filter(ok=True, tip_seq__gt=tail)
        .order_by("-tip_seq", "-id")
        .first()
    )
    if mark is not None:
        raise Broken(
            tail + 1,
            f"the trail was truncated: it ends at {tail} but verification run #{mark.pk} "
            f"({mark.finished_at:%Y-%m-%d %H:%M}) verified {mark.tip_seq} events: events "
            f"{tail + 1}..{mark.tip_seq} were deleted",
        )


def verify_chain(
    *, after: AuditCheckpoint | None = None, witnessed: list[WitnessedHead] = ()
) -> Report:
    """Verify the whole chain, or only the events after a checkpoint with a Merkle root (whose
    own signature, tip and frontier are checked first), and every witnessed head. Stops at the
    first problem.

    Every read goes to one database, the one the router picks for audit reads (a replica outside
    a transaction, the primary inside one), so the walk sees one consistent trail."""
    started = time.monotonic()
    alias = router.db_for_read(AuditEvent) or DEFAULT_DB_ALIAS
    events = AuditEvent.objects.using(alias)
    ring = keys.key_ring()
    # Checkpoints first, then the tail: a checkpoint beyond the tail then proves a truncation,
    # not a race with a checkpoint written while we read.
    checkpoints = list(AuditCheckpoint.objects.using(alias).order_by("size", "id"))
    tail = events.order_by("-seq").values_list("seq", "hash").first() or (0, "")
    walk = _Walk(
        frontier=Frontier(),
        tip=GENESIS_HASH,
        checkpoints=checkpoints,
        ring=ring,
        witnessed=witnessed,
    )
    try:
        for head in witnessed:
            problem = _check_witnessed(head, ring)
            if problem:
                raise Broken(1, problem)
            if head.size > tail[0]:
                raise Broken(
                    tail[0] + 1,
                    f"the trail was truncated: it ends at {tail[0]} but the witnessed checkpoint "
                    f"at {head.size} ({head.source}) vouches for {head.size} events",
                )
        if after is not None:
            problem = _check_checkpoint(after, ring)
            anchor = events.filter(seq=after.size).values_list("hash", flat=True)
            if not problem and list(anchor) != [after.tip_hash]:
                problem = f"checkpoint #{after.pk} no longer matches event {after.size}"
            if problem:
                raise Broken(after.size, problem)
            checkpoints = [c for c in checkpoints if c.size > after.size]
            walk = _Walk(
                frontier=_frontier_of(after),
                tip=after.tip_hash,
                checkpoints=checkpoints,
                ring=ring,
                witnessed=[head for head in witnessed if head.size > after.size],
            )
        if connections[alias].vendor == "postgresql":
            _walk_postgres(walk, alias, tail[0])
        else:
            _walk_orm(walk, alias, tail[0])
        _truncation(alias, tail[0], checkpoints)
    except Broken as broken:
        return Report(
            ok=False,
            events=walk.count,
            checkpoints=walk.checked,
            tip_seq=tail[0],
            tip_hash=tail[1] or GENESIS_HASH,
            seconds=time.monotonic() - started,
            first_bad_seq=broken.seq,
            problem=broken.problem,
        )
    return Report(
        ok=True,
        events=walk.count,
        checkpoints=walk.checked,
        tip_seq=tail[0],
        tip_hash=tail[1] or GENESIS_HASH,
        seconds=time.monotonic() - started,
        witnessed=walk.witnessed_count,
        frontier=walk.frontier,
    )


def describe(report: Report) -> str:
    verdict = "intact" if report.ok else f"BROKEN: {report.problem}"
    if report.ok and report.witnessed:
        verdict += f"; {report.witnessed} witnessed heads agree"
    return (
        f"{report.events} events, {report.checkpoints} checkpoints checked in "
        f"{report.seconds:.2f} s ({report.events_per_second:,.0f} events/s): {verdict}"
    )
