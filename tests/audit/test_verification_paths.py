"""The verifier's two ways through the trail: while the database generates the queryable columns
from the hashed body it checks that once and then only hashes; where a column is not generated as
the model says, it compares every column of every row with the body and names the first row
that differs."""

import pytest
from django.db import DatabaseError, connection, transaction

from audit import verification
from audit.actions import AuditAction
from audit.chain import event_hash, format_timestamp
from audit.services import audit_record
from audit.verification import GENERATED, derivation_problems, describe, verify_chain

pytestmark = pytest.mark.django_db
on_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's catalogue")


def test_the_migrated_table_generates_every_queryable_column_as_the_model_says():
    assert len(GENERATED) == 12
    assert derivation_problems(connection) == []


def test_the_columns_are_what_the_body_says(record_events):
    with transaction.atomic():
        event = audit_record(
            actor=None,
            action=AuditAction.GATE_CHECKED,
            environment='tab\there "q"',
            data={"b": [1, {"z": None, "a": True}], "a": "x", "long key": 1.5},
            target=None,
        )
    stored = type(event).objects.get(seq=event.seq)
    assert (stored.action, stored.actor_kind, stored.actor_name) == (
        "gate.checked",
        "system",
        "system",
    )
    assert stored.environment == 'tab\there "q"'
    assert stored.data == {"b": [1, {"z": None, "a": True}], "a": "x", "long key": 1.5}
    assert stored.ip is None
    assert verify_chain().ok


def test_a_column_made_plain_and_edited_is_named(record_events, make_columns_plain):
    victim = record_events(4)[2]
    with make_columns_plain() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET data = %s WHERE seq = %s",
            ['{"number": 2, "note": "Zoë\'s test ✗"}', victim.seq],
        )
    report = verify_chain()
    assert not report.ok
    assert report.first_bad_seq == victim.seq
    assert report.problem == "columns differ from the hashed body: data"
    assert set(report.checked_by_row) == set(GENERATED)


def test_columns_made_plain_but_unchanged_verify_row_by_row_and_say_so(
    record_events, make_columns_plain
):
    events = record_events(3)
    with make_columns_plain():
        pass
    report = verify_chain()
    assert report.ok, report.problem
    assert report.events == len(events)
    assert set(report.checked_by_row) == set(GENERATED)
    assert "checked row by row: " in describe(report)


def test_a_quote_in_a_column_verifies_and_an_edit_is_still_named(record_events, make_columns_plain):
    with transaction.atomic():
        event = audit_record(
            actor=None, action=AuditAction.GATE_CHECKED, environment='the "blue" one'
        )
    record_events(2)
    assert verify_chain().ok
    with make_columns_plain() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET environment = %s WHERE seq = %s",
            ['the "green" one', event.seq],
        )
    report = verify_chain()
    assert report.first_bad_seq == event.seq
    assert report.problem == "columns differ from the hashed body: environment"


def test_the_first_of_two_problems_is_the_one_named(record_events, make_columns_plain):
    events = record_events(6)
    with make_columns_plain() as cursor:
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


def _rehashed_body(victim, body: str) -> list:
    stamp = format_timestamp(victim.occurred_at)
    return [body, event_hash(victim.prev_hash, victim.seq, stamp, body), victim.seq]


def test_a_body_that_is_not_json_cannot_be_stored_while_the_columns_are_generated(
    record_events, tamper
):
    *_before, victim = record_events(3)
    body = victim.body.replace('"data":{', '"data":{{', 1)
    with tamper() as cursor, pytest.raises(DatabaseError), transaction.atomic():
        cursor.execute(
            "UPDATE audit_auditevent SET body = %s, hash = %s WHERE seq = %s",
            _rehashed_body(victim, body),
        )
    assert verify_chain().ok


def test_a_body_that_is_not_json_is_named_once_the_columns_are_plain(
    record_events, make_columns_plain
):
    *_before, victim = record_events(3)
    body = victim.body.replace('"data":{', '"data":{{', 1)
    with make_columns_plain() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET body = %s, hash = %s WHERE seq = %s",
            _rehashed_body(victim, body),
        )
    report = verify_chain()
    assert report.first_bad_seq == victim.seq
    assert report.problem == "body is not a complete event"
    assert report.events == victim.seq - 1


@on_postgres
def test_a_column_generated_by_another_expression_is_found_and_its_rows_checked(
    record_events, tamper
):
    """A forger who may alter the table regenerates `actor_name` with an expression that lies
    about one event: the catalogue shows the expression is not the model's, and the row-by-row
    walk names the event."""
    victim = record_events(4)[2]
    forged = (
        f"CASE WHEN seq = {victim.seq} THEN 'mallory' ELSE (body::jsonb #>> '{{actor,name}}') END"
    )
    with tamper() as cursor:
        cursor.execute(
            "ALTER TABLE audit_auditevent DROP COLUMN actor_name, ADD COLUMN actor_name "
            f"varchar(150) GENERATED ALWAYS AS ({forged}) STORED"
        )
    assert type(victim).objects.get(seq=victim.seq).actor_name == "mallory"
    assert derivation_problems(connection) == ["actor_name"]
    report = verify_chain()
    assert report.first_bad_seq == victim.seq
    assert report.problem == "columns differ from the hashed body: actor_name"
    assert report.checked_by_row == ("actor_name",)


def test_an_intact_trail_with_generated_columns_is_not_compared_row_by_row(
    record_events, monkeypatch
):
    record_events(3)

    def compared(fields):
        raise AssertionError("the columns were compared row by row")

    monkeypatch.setattr(verification, "_copies_problem", compared)
    report = verify_chain()
    assert report.ok, report.problem
    assert report.checked_by_row == ()


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
