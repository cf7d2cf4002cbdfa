"""The database itself refuses to rewrite the trail, whatever the application does."""

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from audit.models import AuditCheckpoint, AuditEvent
from audit.services import audit_checkpoint_create

pytestmark = pytest.mark.django_db

on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL only (TRUNCATE, replication role)"
)


@pytest.fixture
def trail(record_events):
    events = record_events(3)
    checkpoint = audit_checkpoint_create(actor=None)
    return events, checkpoint


def _rejected(sql: str, params=()):
    with (
        pytest.raises(DatabaseError) as caught,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)
    return str(caught.value)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET prev_hash = 'forged' WHERE seq = %s",
        "UPDATE audit_auditevent SET hash = hash WHERE seq = %s",
        "DELETE FROM audit_auditevent WHERE seq = %s",
        "DELETE FROM audit_auditevent WHERE seq >= %s",
    ],
)
def test_raw_sql_update_and_delete_of_events_are_rejected(trail, sql):
    events, _checkpoint = trail
    before = list(AuditEvent.objects.filter(seq__gte=events[0].seq).values_list("seq", "prev_hash"))
    assert "append-only" in _rejected(sql, [events[1].seq])
    after = list(AuditEvent.objects.filter(seq__gte=events[0].seq).values_list("seq", "prev_hash"))
    assert after == before


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditcheckpoint SET tip_hash = 'x' WHERE id = %s",
        "DELETE FROM audit_auditcheckpoint WHERE id = %s",
    ],
)
def test_raw_sql_update_and_delete_of_checkpoints_are_rejected(trail, sql):
    _events, checkpoint = trail
    assert "append-only" in _rejected(sql, [checkpoint.pk])
    assert AuditCheckpoint.objects.get(pk=checkpoint.pk).tip_hash == checkpoint.tip_hash


def test_the_orm_refuses_too(trail):
    events, checkpoint = trail
    with pytest.raises(PermissionError):
        events[0].save()
    with pytest.raises(PermissionError):
        events[0].delete()
    with pytest.raises(PermissionError):
        checkpoint.delete()
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(seq=events[0].seq).update(prev_hash="forged")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(seq=events[0].seq).delete()


@pytest.mark.parametrize("column", ["action", "actor_name", "data", "ip"])
def test_a_queryable_column_cannot_be_written_even_with_the_guard_off(trail, tamper, column):
    """The columns are generated from the hashed body: no statement writes them."""
    events, _checkpoint = trail
    with (
        tamper() as cursor,
        pytest.raises(DatabaseError) as caught,
        transaction.atomic(),
    ):
        cursor.execute(
            f"UPDATE audit_auditevent SET {column} = NULL WHERE seq = %s", [events[1].seq]
        )
    assert "generated" in str(caught.value) or "DEFAULT" in str(caught.value)
    assert AuditEvent.objects.get(seq=events[1].seq).action == events[1].action


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's INSERT OR REPLACE")
def test_sqlite_insert_or_replace_cannot_overwrite_an_event(trail):
    events, _checkpoint = trail
    target = events[1]
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT OR REPLACE INTO audit_auditevent (seq, occurred_at, body, prev_hash, hash)"
            ' VALUES (%s, %s, \'{"action": "forged"}\', %s, %s)',
            [target.seq, target.occurred_at, target.prev_hash, "f" * 64],
        )
    assert AuditEvent.objects.get(seq=target.seq).action == target.action


@on_postgres
def test_truncate_is_rejected(trail):
    # CASCADE: the tables that keep an event's id (integrations' deliveries) would otherwise
    # refuse first, and the guard itself would go untested.
    for table in ("audit_auditevent", "audit_auditcheckpoint"):
        assert "append-only" in _rejected(f"TRUNCATE {table} CASCADE")
    assert AuditEvent.objects.filter(seq=trail[0][0].seq).exists()


@on_postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET prev_hash = 'forged' WHERE seq = {seq}",
        "DELETE FROM audit_auditevent WHERE seq = {seq}",
        "TRUNCATE audit_auditevent CASCADE",
        "TRUNCATE audit_auditcheckpoint CASCADE",
    ],
)
def test_replica_replication_role_does_not_switch_the_guard_off(trail, sql):
    events, _checkpoint = trail
    with (
        pytest.raises(DatabaseError) as caught,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql.format(seq=events[1].seq))
    assert "append-only" in str(caught.value)
    assert AuditEvent.objects.get(seq=events[1].seq).prev_hash == events[1].prev_hash
