"""The writer, checkpoints and verification runs, called directly as services are."""

import json
import logging

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import RequestFactory

from audit import keys
from audit.actions import AuditAction
from audit.chain import tree_head_message
from audit.merkle import leaf_of, root_of
from audit.models import ActorKind, AuditEvent
from audit.offline_verify import signature_valid
from audit.selectors import AUDITORS_GROUP
from audit.services import audit_checkpoint_create, audit_record, audit_verify, auditor_add
from organisation import services as portal_services
from portal.exceptions import Conflict
from portal.models import Team
from tests.conftest import TRANSACTIONAL_APPS

pytestmark = pytest.mark.django_db


def _tail() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def test_an_event_copies_names_so_it_outlives_its_actor_and_object(org, requester):
    team = org["data-science"]
    request = RequestFactory().get("/", REMOTE_ADDR="::ffff:10.1.2.3", HTTP_USER_AGENT="pytest")
    request.id = "req-1"
    with transaction.atomic():
        event = audit_record(
            actor=requester,
            action=AuditAction.TEAM_UPDATED,
            target=team,
            environment="prod",
            data={"password": "hunter2", "nested": {"token": "t"}, "kept": 1},
            request=request,
        )
    requester.delete()
    stored = AuditEvent.objects.get(seq=event.seq)
    assert (stored.actor_kind, stored.actor_name) == (ActorKind.USER, "requester")
    assert (stored.object_type, stored.object_repr) == ("portal.team", "Data Science")
    assert stored.ip == "10.1.2.3"
    assert stored.data == {"password": "[redacted]", "nested": {"token": "[redacted]"}, "kept": 1}
    body = json.loads(stored.body)
    assert body["actor"]["name"] == "requester"
    assert body["request"] == {"id": "req-1", "ip": "10.1.2.3", "user_agent": "pytest"}
    assert "hunter2" not in stored.body


def test_sequence_numbers_follow_each_other_and_link(record_events):
    start = _tail()
    events = record_events(3)
    assert [e.seq for e in events] == [start + 1, start + 2, start + 3]
    assert events[1].prev_hash == events[0].hash
    assert events[2].prev_hash == events[1].hash


@pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)
def test_audit_record_must_run_inside_the_services_transaction():
    start = _tail()
    with pytest.raises(RuntimeError):
        audit_record(actor=None, action="test.outside_a_transaction")
    assert _tail() == start


def test_a_service_that_fails_after_writing_its_event_leaves_neither(org):
    start = _tail()
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        portal_services.team_create(actor=None, name="Ghost Team", slug="ghost")
        assert AuditEvent.objects.filter(seq=start + 1, action="team.created").exists()
        raise ZeroDivisionError("the service fails after its audit event")
    assert not Team.objects.filter(slug="ghost").exists()
    assert _tail() == start
    team = portal_services.team_create(actor=None, name="Real Team", slug="real")
    assert AuditEvent.objects.get(seq=start + 1).object_id == str(team.pk)


def _root_over_the_trail(size: int) -> str:
    hashes = AuditEvent.objects.filter(seq__lte=size).order_by("seq").values_list("hash", flat=True)
    return root_of(leaf_of(event_hash) for event_hash in hashes).hex()


def test_checkpoint_signs_size_tip_and_merkle_root_with_the_portal_key(
    record_events, administrator
):
    events = record_events(2)
    checkpoint = audit_checkpoint_create(actor=administrator)
    assert checkpoint.size == events[-1].seq
    assert checkpoint.tip_hash == events[-1].hash
    assert checkpoint.merkle_root == _root_over_the_trail(checkpoint.size)
    assert checkpoint.key_id == keys.current_key_id()
    assert checkpoint.created_by == "admin"
    assert signature_valid(
        keys.public_key(),
        tree_head_message(checkpoint.size, checkpoint.tip_hash, checkpoint.merkle_root),
        checkpoint.signature,
    )
    assert audit_checkpoint_create(actor=None).pk == checkpoint.pk
    record_events(3)
    # The next checkpoint continues the tree from this one's frontier, to the same root as a
    # tree built from every event.
    later = audit_checkpoint_create(actor=None)
    assert later.size == checkpoint.size + 3
    assert later.merkle_root == _root_over_the_trail(later.size)


def test_checkpointing_an_empty_trail_is_refused():
    if AuditEvent.objects.exists():
        pytest.skip("committed events from transactional tests are present")
    with pytest.raises(Conflict) as caught:
        audit_checkpoint_create(actor=None)
    assert caught.value.code == "empty_trail"


def test_verification_runs_are_recorded(record_events, auditor):
    record_events(2)
    run, report = audit_verify(actor=auditor)
    assert run.ok and report.ok
    assert run.run_by == "auditor"
    assert run.tip_seq == _tail()
    assert run.events_checked == report.events >= 2


def test_signing_key_is_generated_on_first_use_with_a_warning(settings, tmp_path, caplog):
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "keys" / "audit.pem"
    with caplog.at_level(logging.WARNING, logger="audit.keys"):
        first = keys.current_key_id()
    assert settings.AUDIT_SIGNING_KEY_FILE.exists()
    assert oct(settings.AUDIT_SIGNING_KEY_FILE.stat().st_mode & 0o777) == "0o600"
    assert "Generated a new audit signing key" in caplog.text
    keys._private_key.cache_clear()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="audit.keys"):
        assert keys.current_key_id() == first
    assert caplog.text == ""


def test_signing_key_from_settings_must_be_ed25519(settings):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    settings.AUDIT_SIGNING_KEY = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(ValueError):
        keys.private_key()


def test_auditor_add_is_audited_once(requester):
    start = _tail()
    assert auditor_add(actor=None, user=requester) is True
    assert auditor_add(actor=None, user=requester) is False
    assert Group.objects.get(name=AUDITORS_GROUP).user_set.filter(pk=requester.pk).exists()
    assert list(AuditEvent.objects.filter(seq__gt=start).values_list("action", flat=True)) == [
        "audit.reader_added"
    ]
