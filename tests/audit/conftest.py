"""Fixtures for the audit trail: auditors in their group, events to read,
and a way for a superuser to switch the append-only guard off inside the test's transaction."""

from contextlib import contextmanager

import pytest
from django.db import connection, transaction

from audit.actions import AuditAction
from audit.services import audit_record, auditor_add
from audit.verification import GENERATED


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


@contextmanager
def columns_made_plain():
    """What only someone who may alter the table can do: turn the generated columns into plain
    ones an UPDATE can write (the append-only guard off as well). PostgreSQL drops their
    expressions; SQLite, which cannot, gets the table copied into a plain one. Inside the test's
    transaction, which rolls it back."""
    with guard_off() as cursor:
        if connection.vendor == "postgresql":
            for column in GENERATED:
                cursor.execute(
                    f"ALTER TABLE audit_auditevent ALTER COLUMN {column} DROP EXPRESSION"
                )
        else:
            columns = ", ".join(("seq", "occurred_at", "body", "prev_hash", "hash", *GENERATED))
            cursor.execute(
                'CREATE TABLE audit_plain ("seq" integer NOT NULL PRIMARY KEY, "occurred_at" '
                'datetime NOT NULL, "body" text NOT NULL, "prev_hash" varchar(64) NOT NULL, '
                '"hash" varchar(64) NOT NULL UNIQUE, '
                + ", ".join(f'"{column}" text' for column in GENERATED)
                + ")"
            )
            cursor.execute(
                f"INSERT INTO audit_plain ({columns}) SELECT {columns} FROM audit_auditevent"
            )
            cursor.execute("DROP TABLE audit_auditevent")
            cursor.execute("ALTER TABLE audit_plain RENAME TO audit_auditevent")
        yield cursor


@pytest.fixture
def make_columns_plain():
    return columns_made_plain
