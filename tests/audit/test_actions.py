"""Audit actions are named in one place (`AuditAction`), and who acted is one typed description."""

import ast
import dataclasses
import re
from pathlib import Path

import pytest
from django.db import transaction

from audit.actions import AuditAction
from audit.forms import EventFilterForm
from audit.models import ActorKind, AuditEvent
from audit.services import Actor, audit_record, describe_actor
from portal.models import ServiceAccount

ROOT = Path(__file__).resolve().parents[2]
WRITERS = ("audit", "organisation", "portal", "registry", "releases", "integrations")


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


def _is_named(node: ast.expr, module: dict[str, ast.expr]) -> bool:
    """`AuditAction.X`, a choice between two such, or a module-level table of them."""
    if isinstance(node, ast.Attribute):
        return isinstance(node.value, ast.Name) and node.value.id == "AuditAction"
    if isinstance(node, ast.IfExp):
        return _is_named(node.body, module) and _is_named(node.orelse, module)
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        table = module.get(node.value.id)
        return isinstance(table, ast.Dict) and all(_is_named(v, module) for v in table.values)
    if isinstance(node, ast.Name) and node.id in module:
        return _is_named(module[node.id], module)
    return False


def _action_arguments() -> list[tuple[str, ast.expr, dict[str, ast.expr]]]:
    found = []
    for app in WRITERS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            module = {
                target.id: node.value
                for node in tree.body
                if isinstance(node, ast.Assign)
                for target in node.targets
                if isinstance(target, ast.Name)
            }
            for node in ast.walk(tree):
                name = getattr(node, "func", None)
                if getattr(name, "id", getattr(name, "attr", None)) != "audit_record":
                    continue
                for keyword in node.keywords:
                    if keyword.arg == "action":
                        where = f"{path.relative_to(ROOT)}:{node.lineno}"
                        found.append((where, keyword.value, module))
    return found


def test_every_action_written_is_an_audit_action_member():
    """No text and nothing built at run time: the list in `AuditAction` is the whole list."""
    calls = _action_arguments()
    assert len(calls) > 30, "the scan no longer finds the services' audit_record calls"
    assert [where for where, value, module in calls if not _is_named(value, module)] == []


def test_the_scan_tells_a_named_action_from_text_or_a_built_one():
    module = ast.parse(
        "NAMED = AuditAction.GATE_CHECKED\n"
        'TEXT = "gate.checked"\n'
        "TABLE = {1: AuditAction.GATE_CHECKED}\n"
    )
    names = {target.id: node.value for node in module.body for target in node.targets}

    def named(source: str) -> bool:
        return _is_named(ast.parse(source, mode="eval").body, names)

    assert named("AuditAction.GATE_CHECKED") and named("NAMED") and named("TABLE[status]")
    assert named("AuditAction.DEPLOYMENT_STARTED if ok else AuditAction.DEPLOYMENT_REFUSED")
    assert not named('"gate.checked"') and not named("TEXT")
    assert not named('f"deployment.{status}"') and not named('"deployment." + status')


def test_the_auditors_filter_offers_the_named_actions_only():
    offered = dict(EventFilterForm().fields["action"].choices)
    assert set(AuditAction.values) <= set(offered)
    assert EventFilterForm({"action": "change_request.signed"}).is_valid()
    assert not EventFilterForm({"action": "change_request.approved"}).is_valid()


def test_describe_actor_names_the_system_a_user_and_a_service_account(django_user_model, db, org):
    assert describe_actor(None) == Actor(ActorKind.SYSTEM, "", "system")
    user = django_user_model.objects.create_user(username="zoe")
    assert describe_actor(user) == Actor(ActorKind.USER, str(user.pk), "zoe")
    pipeline = ServiceAccount.objects.create(name="fraud-ci", team=org["data-science"])
    who = describe_actor(pipeline)
    assert (who.kind, who.id, who.name) == (ActorKind.SERVICE, str(pipeline.pk), "fraud-ci")
    with pytest.raises(dataclasses.FrozenInstanceError):
        who.name = "someone else"
