"""The verifier's fast paths still find and name what the exact checks find: a changed `data`
column, text columns that need JSON escapes, the first of several problems, and on PostgreSQL
the rows where the server's comparison of `data` cannot be taken on its word."""

import io
import json

import pytest
from django.db import connection, transaction
from psycopg2 import DataError

from audit import verification
from audit.actions import AuditAction
from audit.chain import event_hash, format_timestamp
from audit.services import audit_record
from audit.verification import (
    DATA,
    DATA_UNLESS_IN_BODY,
    POSTGRES_COPY,
    POSTGRES_TEXT,
    verify_chain,
)

pytestmark = pytest.mark.django_db
on_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's COPY")


def test_a_changed_data_column_is_named(record_events, tamper):
    victim = record_events(4)[2]
    with tamper() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET data = %s WHERE seq = %s",
            ['{"number": 2, "note": "Zoë\'s test ✗"}', victim.seq],
        )
    report = verify_chain()
    assert not report.ok
    assert report.first_bad_seq == victim.seq
    assert report.problem == "columns differ from the hashed body: data"


def test_data_laid_out_differently_but_equal_verifies(record_events):
    with transaction.atomic():
        audit_record(
            actor=None,
            action=AuditAction.GATE_CHECKED,
            data={"b": [1, {"z": None, "a": True}], "a": "x", "long key": 1.5},
        )
    report = verify_chain()
    assert report.ok, report.problem


def test_a_quote_in_a_column_without_backslash_verifies_and_is_still_checked(record_events, tamper):
    with transaction.atomic():
        event = audit_record(
            actor=None, action=AuditAction.GATE_CHECKED, environment='the "blue" one'
        )
    record_events(2)
    assert verify_chain().ok
    with tamper() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET environment = %s WHERE seq = %s",
            ['the "green" one', event.seq],
        )
    report = verify_chain()
    assert report.first_bad_seq == event.seq
    assert report.problem == "columns differ from the hashed body: environment"


def test_the_first_of_two_problems_is_the_one_named(record_events, tamper):
    events = record_events(6)
    with tamper() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET object_repr = 'moved' WHERE seq = %s", [events[1].seq]
        )
        cursor.execute(
            "UPDATE audit_auditevent SET hash = %s WHERE seq = %s", ["f" * 64, events[4].seq]
        )
    report = verify_chain()
    assert report.first_bad_seq == events[1].seq
    assert "object_repr" in report.problem
    assert report.events == events[1].seq - 1


def test_an_event_out_of_order_is_named(record_events, tamper):
    events = record_events(4)
    with tamper() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = %s", [events[1].seq])
        cursor.execute(
            "UPDATE audit_auditevent SET seq = %s WHERE seq = %s", [events[1].seq, events[3].seq]
        )
    report = verify_chain()
    assert not report.ok
    assert report.first_bad_seq == events[1].seq


def _server_copy(first: int, last: int) -> list[list[bytes]]:
    """The rows as the walk's COPY reads them, with the server comparing `data` to the body."""
    sql = POSTGRES_COPY.format(
        text=", ".join(POSTGRES_TEXT), data=DATA_UNLESS_IN_BODY, low=first, high=last
    )
    copied = io.BytesIO()
    with connection.cursor() as cursor:
        cursor.copy_expert(sql, copied)
    return [line.split(b"\t") for line in copied.getvalue().split(b"\n")[:-1]]


@on_postgres
def test_the_server_compares_data_in_bodies_without_escapes_and_sends_the_others(record_events):
    plain = record_events(3)
    with transaction.atomic():
        quoted = audit_record(
            actor=None, action=AuditAction.GATE_CHECKED, data={"note": 'the "blue" one'}
        )
    rows = _server_copy(plain[0].seq, quoted.seq)
    assert [row[DATA] for row in rows[:3]] == [b"", b"", b""]
    assert json.loads(rows[3][DATA].replace(b"\\\\", b"\\")) == {"note": 'the "blue" one'}
    assert verify_chain().ok


def test_a_column_edited_to_the_same_length_is_named_though_data_still_lines_up(
    record_events, tamper
):
    victim = record_events(4)[1]
    assert victim.actor_name == "system"
    with tamper() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET actor_name = 'sysadm' WHERE seq = %s", [victim.seq]
        )
    if connection.vendor == "postgresql":
        # The server's cut of the body still finds `data`: its word alone must not pass the row.
        assert _server_copy(victim.seq, victim.seq)[0][DATA] == b""
    report = verify_chain()
    assert report.first_bad_seq == victim.seq
    assert report.problem == "columns differ from the hashed body: actor_name"


def test_a_body_whose_data_is_not_json_is_named_with_its_hash_recomputed(record_events, tamper):
    *_before, victim = record_events(3)
    body = victim.body.replace('"data":{', '"data":{{', 1)
    rehashed = event_hash(victim.prev_hash, victim.seq, format_timestamp(victim.occurred_at), body)
    with tamper() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET body = %s, hash = %s WHERE seq = %s",
            [body, rehashed, victim.seq],
        )
    if connection.vendor == "postgresql":
        with pytest.raises(DataError), transaction.atomic():
            _server_copy(victim.seq, victim.seq)
    report = verify_chain()
    assert report.first_bad_seq == victim.seq
    assert report.problem == "body is not a complete event"
    assert report.events == victim.seq - 1


def test_a_gap_wider_than_a_chunk_is_named_where_it_starts(record_events, tamper, monkeypatch):
    monkeypatch.setattr(verification, "CHUNK", 2)
    events = record_events(8)
    missing = [event.seq for event in events[2:5]]
    with tamper() as cursor:
        cursor.execute(
            "DELETE FROM audit_auditevent WHERE seq >= %s AND seq <= %s", [missing[0], missing[-1]]
        )
    report = verify_chain()
    assert report.first_bad_seq == missing[0]
    assert report.problem == f"events {missing[0]}..{missing[-1]} are missing"
