"""The read replica router: auditors' reads go to `replica` when one is configured; writes, other
apps and the audit append (lock, tail read, insert) stay on the primary."""

import pytest
from django.db import connection, transaction

from audit.actions import AuditAction
from audit.models import AuditCheckpoint, AuditEvent
from audit.services import audit_record
from portal.db_router import AuditReplicaRouter
from registry.models import RegisteredModel
from tests.conftest import TRANSACTIONAL_APPS


@pytest.fixture
def replica(settings, monkeypatch):
    """A `replica` alias pointing at the test database, as DATABASE_REPLICA_URL would add it."""
    monkeypatch.setitem(settings.DATABASES, "replica", {**settings.DATABASES["default"]})
    return "replica"


def test_without_a_replica_every_read_stays_on_the_primary():
    router = AuditReplicaRouter()
    assert router.db_for_read(AuditEvent) is None
    assert AuditEvent.objects.all().db == "default"


def test_audit_reads_go_to_the_replica(replica):
    router = AuditReplicaRouter()
    assert router.db_for_read(AuditEvent) == replica
    assert router.db_for_read(AuditCheckpoint) == replica
    assert AuditEvent.objects.filter(action="gate.checked").db == replica


def test_other_apps_and_writes_stay_on_the_primary(replica):
    router = AuditReplicaRouter()
    assert router.db_for_read(RegisteredModel) is None
    assert RegisteredModel.objects.all().db == "default"
    assert router.db_for_write(AuditEvent) == "default"
    assert router.allow_migrate("default", "audit")
    assert not router.allow_migrate(replica, "audit")


@pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)
def test_the_audit_append_reads_its_tail_on_the_primary(replica):
    """Inside the writing transaction the tail read and the insert both use the primary: a
    lagging replica would otherwise link the new event to a stale tail."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as primary, transaction.atomic():
        assert AuditEvent.objects.all().db == "default"
        event = audit_record(actor=None, action=AuditAction.GATE_CHECKED, data={"ok": True})
    statements = [query["sql"] for query in primary.captured_queries]
    assert any('FROM "audit_auditevent"' in sql and "SELECT" in sql for sql in statements)
    assert any(sql.startswith('INSERT INTO "audit_auditevent"') for sql in statements)
    # Once the transaction is over, the auditors' reads of the same table go to the replica.
    assert AuditEvent.objects.all().db == replica
    assert AuditEvent.objects.using("default").filter(seq=event.seq).exists()
