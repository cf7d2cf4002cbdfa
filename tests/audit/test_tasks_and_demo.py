import io

import pytest
from django.contrib.auth.models import Group

from audit import demo, tasks
from audit.models import AuditCheckpoint, AuditEvent, AuditMerkleChunk, AuditVerification
from audit.selectors import AUDITORS_GROUP

pytestmark = pytest.mark.django_db


def test_task_verifies_then_signs_the_tip(record_events):
    events = record_events(2)
    result = tasks.audit_verify_and_checkpoint.apply().get()
    assert result["ok"] is True
    assert result["size"] == events[-1].seq
    assert AuditCheckpoint.objects.get(pk=result["checkpoint"]).tip_hash == events[-1].hash
    assert AuditVerification.objects.latest().ok


def test_task_stores_the_roots_of_complete_chunks_for_evidence_packs(record_events, monkeypatch):
    monkeypatch.setattr("audit.services.CHUNK_BITS", 1)
    events = record_events(5)
    result = tasks.audit_verify_and_checkpoint.apply().get()
    assert result["chunks"] == events[-1].seq // 2
    assert AuditMerkleChunk.objects.count() == events[-1].seq // 2


def test_task_signs_nothing_over_a_broken_trail(record_events, tamper):
    events = record_events(2)
    with tamper() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = %s", [events[0].seq])
    checkpoints = AuditCheckpoint.objects.count()
    result = tasks.audit_verify_and_checkpoint.apply().get()
    assert result == {"ok": False, "first_bad_event": events[0].seq}
    assert AuditCheckpoint.objects.count() == checkpoints
    recorded = AuditVerification.objects.latest()
    assert (recorded.ok, recorded.first_bad_seq) == (False, events[0].seq)


def test_demo_seed_is_idempotent(org):
    demo.seed(io.StringIO())
    state = (
        AuditEvent.objects.count(),
        AuditCheckpoint.objects.count(),
        list(Group.objects.get(name=AUDITORS_GROUP).user_set.values_list("username", flat=True)),
    )
    demo.seed(io.StringIO())
    assert state[2] == ["auditor"]
    assert state[1] >= 1
    assert (
        AuditEvent.objects.count(),
        AuditCheckpoint.objects.count(),
        list(Group.objects.get(name=AUDITORS_GROUP).user_set.values_list("username", flat=True)),
    ) == state


def test_demo_leaves_a_verification_for_the_banner(org):
    demo.seed(io.StringIO())
    runs = AuditVerification.objects.count()
    demo.seed(io.StringIO())
    assert runs >= 1
    assert AuditVerification.objects.count() == runs
