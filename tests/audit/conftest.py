"""Fixtures for the audit trail: auditors in their group, events to read,
and a way for a superuser to switch the append-only guard off inside the test's transaction."""

from contextlib import contextmanager

import pytest
from django.db import connection, transaction

from audit.actions import AuditAction
from audit.services import audit_record, auditor_add


@pytest.fixture
def auditor(auditor):
    """The auditor persona, in the Auditors group as the demo puts them."""
    auditor_add(actor=None, user=auditor)
    return auditor


@pytest.fixture
def record_events():
    """Append `count` events, one transaction each like real services; returns them in order."""

    def record(
        count: int,
        *,
        action: AuditAction = AuditAction.GATE_CHECKED,
        target=None,
        environment="",
        actor=None,
    ):
        events = []
        for number in range(count):
            with transaction.atomic():
                events.append(
                    audit_record(
                        actor=actor,
                        action=action,
                        target=target,
                        environment=environment,
                        data={"number": number, "note": "Zoë's test ✓"},
                    )
                )
        return events

    return record


@contextmanager
def guard_off():
    """What only a database superuser can do: switch the append-only triggers off. Inside the
    test's transaction, so the rollback at the end of the test puts them back."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in ("audit_auditevent", "audit_auditcheckpoint"):
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_no_rewrite")
        else:
            for table in ("audit_auditevent", "audit_auditcheckpoint"):
                for kind in ("update", "delete"):
                    cursor.execute(f"DROP TRIGGER {table}_no_{kind}")
        yield cursor


@pytest.fixture
def tamper():
    return guard_off
