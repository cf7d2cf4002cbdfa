"""Audit trail benchmark: `make bench` runs it against the PostgreSQL server at DATABASE_URL.

It creates its own database (`gatehouse_bench`) on that server, drops it at the end, and never
touches another database. In one run it measures, each against a baseline from the same run:

- chained appends per second (`audit_record`, one transaction each) with 1 and 8 writers, against
  plain inserts of the same rows, built by the same code, into an unchained copy of the table
  (same columns and indexes, no lock, no tail read, no link);
- `audit_verify` events per second against raw sha256 over the same bytes;
- one filtered page of events at 10 thousand and at 1 million events.

The big chain is built by `bulk_chain` below: the same `chain_event` that `audit_record` uses,
under the same append lock, loaded with COPY in batches (the filter indexes dropped meanwhile and
built again at the end), so the rows are identical to appended ones and the chain verifies. The
figures replace the audit section of docs/benchmarks.md.
"""

import hashlib
import itertools
import os
import platform
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB = os.environ.get("BENCH_AUDIT_DB", "gatehouse_bench")
SCALE = float(os.environ.get("BENCH_AUDIT_SCALE", "1"))
APPENDS_ONE = int(2000 * SCALE)
APPENDS_EIGHT = int(4000 * SCALE)
SMALL = 10_000
BIG = int(1_000_000 * SCALE)
BULK_BATCH = 5000
CHECKPOINT_EVERY = 250_000
PAGE_RUNS = 100
VERIFY_ROUNDS = 3
# The verification figures of the last run before the database generated the queryable columns
# from the body (docs/benchmarks.md, 2 CPUs, load 0.1 to 1.5), for the report to show beside the
# new ones.
PREVIOUS_VERIFY = (
    "228,381 events/s `audit_verify` against 622,356 COPY + sha256 (37%), run 2026-12-01 "
    "15:17 UTC on the same kind of machine, comparing every row's columns with its body"
)
REPORT = ROOT / "docs" / "benchmarks.md"

ACTIONS = [
    f"{thing}.{verb}"
    for thing in ("change_request", "sign_off", "deployment", "model_version", "policy")
    for verb in ("created", "updated", "signed", "closed")
]
ACTORS = [f"user{n:02d}" for n in range(50)]
ENVIRONMENTS = ["dev", "test", "prod"]
OBJECT_TYPES = ["releases.changerequest", "releases.deployment", "registry.modelversion"]
HOT_OBJECT = ("releases.deployment", "42")
HOT_ACTOR, HOT_ACTION = "user13", "deployment.created"


def database_url(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


def admin_connection(url: str):
    import psycopg2

    parts = urlparse(url)
    connection = psycopg2.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password or None,
        dbname="postgres",
    )
    connection.autocommit = True
    return connection


def recreate(url: str, *, drop_only: bool = False) -> None:
    connection = admin_connection(url)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        if not drop_only:
            cursor.execute(f'CREATE DATABASE "{BENCH_DB}"')
    connection.close()


def machine(server_version: str) -> str:
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return (
        f"Machine: {os.cpu_count()} CPUs (`nproc`), {memory_kb / 1024 / 1024:.1f} GiB memory, "
        f"Python {platform.python_version()}, PostgreSQL {server_version}."
    )


def random_columns(rng: random.Random, number: int) -> dict:
    """A plausible event. One in a hundred concerns the same busy object, actor and action, so
    that every filtered page below is full (two pages of 50) at 10 thousand events already and
    the two sizes compare like with like."""
    object_type = rng.choice(OBJECT_TYPES)
    object_id = str(rng.randrange(1, 2001))
    actor, action = rng.choice(ACTORS), rng.choice(ACTIONS)
    if rng.random() < 0.01:
        object_type, object_id = HOT_OBJECT
        actor, action = HOT_ACTOR, HOT_ACTION
    return {
        "actor_kind": "user",
        "actor_id": str(rng.randrange(1, 51)),
        "actor_name": actor,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "object_repr": f"{object_type.split('.')[1]} {object_id}",
        "environment": rng.choice(ENVIRONMENTS),
        "data": {
            "number": number,
            "comment": "Reviewed the evidence; approved for the window. Zoë ✓",
            "digest": hashlib.sha256(str(number).encode()).hexdigest(),
        },
        "request_id": secrets.token_hex(16),
        "ip": "10.0.0.1",
        "user_agent": "gatehouse-bench/1.0",
    }


def bulk_chain(target: int, rng: random.Random) -> None:
    """Grow the chain to `target` events, identical to appended ones (see the module doc)."""
    from django.db import connection

    from audit.models import AuditEvent

    # Filter indexes are built once at the end, as a bulk load would; the key and the unique hash
    # stay, so every insert is still checked.
    with connection.schema_editor() as editor:
        for index in AuditEvent._meta.indexes:
            editor.remove_index(AuditEvent, index)
    try:
        _append_batches(target, rng)
    finally:
        with connection.schema_editor() as editor:
            for index in AuditEvent._meta.indexes:
                editor.add_index(AuditEvent, index)


def _append_batches(target: int, rng: random.Random) -> None:
    from django.db import transaction
    from django.utils import timezone

    from audit.services import _lock_tail, audit_checkpoint_create, chain_event

    while True:
        with transaction.atomic():
            seq, prev_hash = _lock_tail()
            if seq >= target:
                return
            batch = []
            last = min(seq + BULK_BATCH, target)
            for number in range(seq + 1, last + 1):
                event = chain_event(
                    seq=number,
                    prev_hash=prev_hash,
                    occurred_at=timezone.now(),
                    **random_columns(rng, number),
                )
                prev_hash = event.hash
                batch.append(event)
            _copy_in(batch)
        if last % CHECKPOINT_EVERY == 0:
            audit_checkpoint_create(actor=None)


def _copy_text(value) -> str:
    if value is None:
        return "\\N"
    text = value if isinstance(value, str) else str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_in(events: list) -> None:
    """COPY the events in: the same column values `save()` writes, without per-row SQL (the
    database generates the queryable columns from the body, as for an appended event)."""
    import io

    from django.db import connection

    from audit.models import AuditEvent

    fields = [field for field in AuditEvent._meta.local_fields if not field.generated]
    buffer = io.StringIO()
    for event in events:
        values = []
        for field in fields:
            value = getattr(event, field.attname)
            if field.name == "occurred_at":
                value = value.isoformat()
            values.append(_copy_text(value))
        buffer.write("\t".join(values) + "\n")
    buffer.seek(0)
    columns = ", ".join(field.column for field in fields)
    with connection.cursor() as cursor:
        cursor.copy_expert(f"COPY audit_auditevent ({columns}) FROM STDIN", buffer)


def plain_model():
    from django.db import models

    from audit.models import AuditEvent

    fields = {field.name: field.clone() for field in AuditEvent._meta.local_fields}
    meta = type("Meta", (), {"app_label": "audit", "db_table": "bench_plain", "managed": False})
    return type("PlainEvent", (models.Model,), {**fields, "Meta": meta, "__module__": __name__})


def run_writers(writers: int, total: int, append) -> float:
    """Appends per second with `writers` threads, each on its own connection."""
    from django.db import connections

    per_writer = total // writers
    barrier = threading.Barrier(writers + 1)
    errors = []

    def work(number: int) -> None:
        try:
            barrier.wait()
            for n in range(per_writer):
                append(number * per_writer + n)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return per_writer * writers / elapsed


def bench_appends() -> dict:
    from django.db import connection, transaction
    from django.utils import timezone

    from audit.actions import AuditAction
    from audit.services import audit_record, chain_event, to_json_value

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_plain (LIKE audit_auditevent INCLUDING ALL)")
    plain = plain_model()
    plain_seq = itertools.count(1)
    rng = random.Random(7)

    def chained(number: int) -> None:
        columns = random_columns(rng, number)
        with transaction.atomic():
            audit_record(
                actor=None,
                action=AuditAction.GATE_CHECKED,
                environment=columns["environment"],
                data=columns["data"],
            )

    def unchained(number: int) -> None:
        columns = random_columns(rng, number)
        columns.update(
            actor_kind="system",
            actor_id="",
            actor_name="system",
            object_type="",
            object_id="",
            object_repr="",
            request_id="",
            ip=None,
            user_agent="",
            data=to_json_value(columns["data"]),
        )
        event = chain_event(
            seq=next(plain_seq), prev_hash="0" * 64, occurred_at=timezone.now(), **columns
        )
        with transaction.atomic():
            plain.objects.create(
                **{f.name: getattr(event, f.name) for f in plain._meta.fields},
            )

    results = {}
    for writers, total in ((1, APPENDS_ONE), (8, APPENDS_EIGHT)):
        # Alternate so that neither side always runs on a warmer database.
        results[("plain", writers)] = run_writers(writers, total, unchained)
        results[("chained", writers)] = run_writers(writers, total, chained)
        print(
            f"appends, {writers} writer(s): chained {results[('chained', writers)]:,.0f}/s, "
            f"plain {results[('plain', writers)]:,.0f}/s",
            flush=True,
        )
    return results


PAGE_FILTERS = [
    ("no filter, first page", {}),
    ("action", {"action": "sign_off.signed"}),
    ("actor", {"actor": "user07"}),
    ("environment", {"environment": "prod"}),
    ("object type and id", {"object_type": HOT_OBJECT[0], "object_id": HOT_OBJECT[1]}),
    ("action and actor", {"action": HOT_ACTION, "actor": HOT_ACTOR}),
]


def bench_pages(reader) -> dict:
    """Median seconds for the first page and for the page after it (cursor), per filter."""
    from django.db import connection

    from audit.selectors import EventFilters, audit_event_page

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE audit_auditevent")
    timings = {}
    for label, filters in PAGE_FILTERS:
        query = EventFilters(**filters)
        first = audit_event_page(user=reader, filters=query)
        runs = []
        for _ in range(PAGE_RUNS):
            started = time.perf_counter()
            page = audit_event_page(user=reader, filters=query)
            audit_event_page(user=reader, filters=query, cursor=page.next_cursor)
            runs.append((time.perf_counter() - started) / 2)
        timings[label] = (statistics.median(runs), len(first.events))
    return timings


class _HashEachLine:
    """A COPY sink that hashes each row as it arrives, as the verifier's walk does."""

    def write(self, line: bytes, sha256=hashlib.sha256) -> None:
        seq, stamp, prev_hash, body = line[:-1].split(b"\t")
        sha256(b"\n".join((prev_hash, seq, stamp, body))).hexdigest()


def read_and_hash_rate(events: int) -> float:
    """Events/s for reading just the hashed bytes from PostgreSQL (COPY) and hashing them: the
    floor that any verifier reading this database stands on. Streamed into the hash row by row
    in the verifier's chunks, so both read the database the same way."""
    from django.db import connection

    from audit.verification import CHUNK

    sql = (
        "COPY (SELECT seq, to_char(occurred_at AT TIME ZONE 'UTC', "
        '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\'), prev_hash, body FROM audit_auditevent '
        "WHERE seq >= {low} AND seq <= {high} ORDER BY seq) TO STDOUT"
    )
    sink = _HashEachLine()
    started = time.perf_counter()
    for low in range(1, events + 1, CHUNK):
        with connection.cursor() as cursor:
            cursor.copy_expert(sql.format(low=low, high=low + CHUNK - 1), sink)
    return events / (time.perf_counter() - started)


def bench_verify() -> tuple[float, float, int]:
    """(verify events/s, raw sha256 events/s, events)."""
    from audit.chain import format_timestamp
    from audit.models import AuditEvent
    from audit.services import audit_verify

    run, report = audit_verify(actor=None)
    if not run.ok:
        raise SystemExit(f"the benchmark chain does not verify: {run.problem}")
    rows = (
        AuditEvent.objects.order_by("seq")
        .values_list("prev_hash", "seq", "occurred_at", "body")
        .iterator(chunk_size=10_000)
    )
    hashed, seconds = 0, 0.0
    # In slices, so the bytes in memory stay bounded; only the hashing is timed.
    while materials := [
        f"{prev_hash}\n{seq}\n{format_timestamp(occurred_at)}\n{body}".encode()
        for prev_hash, seq, occurred_at, body in itertools.islice(rows, 100_000)
    ]:
        sha256 = hashlib.sha256
        started = time.perf_counter()
        for material in materials:
            sha256(material).hexdigest()
        seconds += time.perf_counter() - started
        hashed += len(materials)
    return report.events_per_second, hashed / seconds, report.events


def write_report(header: str, section: str, *, area: str = "audit") -> None:
    """Replace this area's section of docs/benchmarks.md, between its markers, and leave the
    other benchmarks' sections as they are."""
    start, end = f"<!-- {area}:start -->", f"<!-- {area}:end -->"
    text = REPORT.read_text(encoding="utf-8") if REPORT.exists() else ""
    if not text:
        text = (
            "# Benchmarks\n\n"
            "Written by `make bench` (bin/bench runs every `bench/bench_*.py` on PostgreSQL). "
            "Each figure is compared with a baseline measured in the same run on the same "
            "machine, so ratios matter more than absolute numbers.\n\n"
            f"{header}\n"
        )
    block = f"{start}\n{section.rstrip()}\n{end}\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text, encoding="utf-8")


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def main() -> None:
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("bench_audit needs DATABASE_URL pointing at a PostgreSQL server")
    recreate(url)
    os.environ["DATABASE_URL"] = database_url(url, BENCH_DB)
    os.environ["GATEHOUSE_VAR_DIR"] = tempfile.mkdtemp(prefix="gatehouse-bench-")
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, connections

    try:
        call_command("migrate", verbosity=0)
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            server_version = cursor.fetchone()[0].split()[0]
        reader = get_user_model().objects.create(username="bench", is_superuser=True)

        appends = bench_appends()
        rng = random.Random(11)
        bulk_chain(SMALL, rng)
        pages_small = bench_pages(reader)
        print(f"pages at {SMALL:,}: done", flush=True)
        built = time.perf_counter()
        bulk_chain(BIG, rng)
        build_rate = (BIG - SMALL) / (time.perf_counter() - built)
        print(f"bulk chain to {BIG:,}: {build_rate:,.0f} events/s", flush=True)
        pages_big = bench_pages(reader)
        verify_rates, read_rates = [], []
        # Alternated and repeated: the machine's load moves more than either figure does.
        for _round in range(VERIFY_ROUNDS):
            verify_rate, raw_rate, verified = bench_verify()
            verify_rates.append(verify_rate)
            read_rates.append(read_and_hash_rate(verified))
        verify_rate = statistics.median(verify_rates)
        read_rate = statistics.median(read_rates)
        print(
            f"verify {verify_rate:,.0f}/s, raw sha256 {raw_rate:,.0f}/s, "
            f"read and hash {read_rate:,.0f}/s",
            flush=True,
        )
    finally:
        connections.close_all()
        recreate(url, drop_only=True)
    total = time.perf_counter() - started
    load_after = os.getloadavg()[0]

    one = appends[("chained", 1)] / appends[("plain", 1)]
    eight = appends[("chained", 8)] / appends[("plain", 8)]
    verify_ratio = verify_rate / raw_rate
    lines = [
        "## Audit trail (`bench/bench_audit.py`)",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {total / 60:.1f} minutes "
        f"in all, database `{BENCH_DB}` created and dropped by the run. Load average "
        f"{load_before:.1f} at the start and {load_after:.1f} at the end: other work shared "
        "the machine, which the same-run baselines absorb better than the absolute figures.",
        "",
        "| measure | audit | baseline (same run) | ratio | goal |",
        "|---|---|---|---|---|",
        f"| appends/s, 1 writer | {appends[('chained', 1)]:,.0f} chained "
        f"| {appends[('plain', 1)]:,.0f} plain inserts | {one:.0%} "
        f"| ≥ 50%: {verdict(one >= 0.5)} |",
        f"| appends/s, 8 writers | {appends[('chained', 8)]:,.0f} chained "
        f"| {appends[('plain', 8)]:,.0f} plain inserts | {eight:.0%} | — |",
        f"| verification, events/s ({verified:,} events) | {verify_rate:,.0f} `audit_verify` "
        f"| {raw_rate:,.0f} raw sha256 | {verify_ratio:.0%} "
        f"| ≥ 25%: {verdict(verify_ratio >= 0.25)} |",
        f"| verification, events/s, against reading the hashed bytes from PostgreSQL "
        f"| {verify_rate:,.0f} `audit_verify` | {read_rate:,.0f} COPY + sha256 "
        f"| {verify_rate / read_rate:.0%} | ≥ 50%: {verdict(verify_rate / read_rate >= 0.5)} |",
        "",
        f"Verification figures are medians of {VERIFY_ROUNDS} rounds, each `audit_verify` then "
        f"COPY + sha256 over the same {verified:,} events (rounds: "
        + ", ".join(f"{v:,.0f} vs {r:,.0f}" for v, r in zip(verify_rates, read_rates, strict=True))
        + f"). Before this run's verifier: {PREVIOUS_VERIFY}.",
        "",
        f"Filtered page of 50 events, newest first (median of {PAGE_RUNS} runs of the first page "
        "and the next one by cursor):",
        "",
        f"| filter | {SMALL:,} events | {BIG:,} events | ratio | goal ≤ 2 times |",
        "|---|---|---|---|---|",
    ]
    for label, _filters in PAGE_FILTERS:
        small, big = pages_small[label][0], pages_big[label][0]
        ratio = big / small
        lines.append(
            f"| {label} | {small * 1000:.2f} ms | {big * 1000:.2f} ms | {ratio:.2f} times "
            f"| {verdict(ratio <= 2)} |"
        )
    lines += [
        "",
        f"Chained appends commit one transaction each, like services. Plain inserts write the "
        f"same rows, built by the same code, into `bench_plain` (`LIKE audit_auditevent "
        f"INCLUDING ALL`: same columns and indexes) without the append lock, the tail read and "
        f"the link. Raw sha256 hashes the exact bytes `audit_verify` hashes, already in memory; "
        f"`audit_verify` also reads them from the database with the stored hash, checks once "
        f"from the catalogue that the database generates the queryable columns from the body "
        f"(so they need no comparison row by row), checks every link and hash, grows the Merkle "
        f"tree and checks the signed checkpoints. COPY + sha256 reads only the four hashed "
        f"columns and "
        f"hashes each row as it streams in, in the same chunks as `audit_verify`, which checks "
        f"each row of its own COPY as it streams in. Both processes of `audit_verify` (the server "
        f"and Python) are busy for most of its run, so other work on the machine takes more "
        f"from it than from COPY + sha256: with the CPUs to themselves the ratio is that of "
        f"their slower sides, under load it falls toward that of their total CPU time. The 1 "
        f"million chain was built by "
        f"`bulk_chain` ({build_rate:,.0f} events/s): `chain_event` under the append lock, "
        f"loaded with `COPY` while the filter indexes are dropped (they are built again "
        f"afterwards), a signed checkpoint every {CHECKPOINT_EVERY:,} events. One event in a "
        f"hundred concerns the same object, actor and action, so every filtered page is full "
        f"at both sizes; `audit_verify` then verifies the whole chain.",
    ]
    write_report(machine(server_version), "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
