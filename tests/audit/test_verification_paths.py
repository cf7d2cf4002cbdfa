"""The verifier's fast paths still find and name what the exact checks find: a changed `data`
column, text columns that need JSON escapes, and the first of several problems."""

import pytest
from django.db import transaction

from audit.actions import AuditAction
from audit.services import audit_record
from audit.verification import verify_chain

pytestmark = pytest.mark.django_db


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
