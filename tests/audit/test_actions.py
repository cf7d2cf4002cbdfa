"""Audit actions are named in one place (`AuditAction`), and who acted is one typed description."""

import dataclasses
import re

import pytest
from django.db import transaction

from audit.actions import AuditAction
from audit.forms import EventFilterForm
from audit.models import ActorKind, AuditEvent
from audit.services import Actor, audit_record, describe_actor


def test_every_action_is_entity_dot_verb_and_named_once():
    assert all(re.fullmatch(r"[a-z_]+\.[a-z_]+", action) for action in AuditAction.values)
    # An enum silently makes a repeated value an alias of the first name.
    assert len(AuditAction.__members__) == len(AuditAction)


@pytest.mark.django_db
def test_audit_record_refuses_an_action_that_is_not_named():
    before = AuditEvent.objects.count()
    with pytest.raises(ValueError, match=r"deployment\.created"), transaction.atomic():
        audit_record(actor=None, action="deployment.created")
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
def test_a_named_action_is_stored_as_its_plain_value():
    with transaction.atomic():
        event = audit_record(actor=None, action=AuditAction.GATE_CHECKED)
    stored = AuditEvent.objects.get(seq=event.seq)
    assert stored.action == "gate.checked"
    assert '"action":"gate.checked"' in stored.body


def test_the_auditors_filter_offers_the_named_actions_only():
    offered = dict(EventFilterForm().fields["action"].choices)
    assert set(AuditAction.values) <= set(offered)
    assert EventFilterForm({"action": "change_request.signed"}).is_valid()
    assert not EventFilterForm({"action": "change_request.approved"}).is_valid()


def test_describe_actor_names_the_system_a_user_and_a_service_account(django_user_model, db, org):
    from portal.models import ServiceAccount

    assert describe_actor(None) == Actor(ActorKind.SYSTEM, "", "system")
    user = django_user_model.objects.create_user(username="zoe")
    assert describe_actor(user) == Actor(ActorKind.USER, str(user.pk), "zoe")
    pipeline = ServiceAccount.objects.create(name="fraud-ci", team=org["data-science"])
    who = describe_actor(pipeline)
    assert (who.kind, who.id, who.name) == (ActorKind.SERVICE, str(pipeline.pk), "fraud-ci")
    with pytest.raises(dataclasses.FrozenInstanceError):
        who.name = "someone else"
