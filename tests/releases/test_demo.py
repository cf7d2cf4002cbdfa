import io

import pytest
from django.contrib.auth import get_user_model

from audit.actions import AuditAction
from audit.models import AuditEvent
from registry import demo as registry_demo
from releases import demo
from releases.models import (
    ChangeRequest,
    EnvironmentPolicy,
    FreezeWindow,
    MaintenanceWindow,
    SignOff,
    SignOffKind,
)
from releases.selectors.change_requests import change_requests_waiting_for
from releases.selectors.policy import environment_policies_current
from releases.states import Kind, State

pytestmark = pytest.mark.django_db


def test_the_demo_gives_every_approver_something_and_is_idempotent(org, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    registry_demo.seed(io.StringIO())
    out = io.StringIO()
    demo.seed(out)
    assert "6 demo change requests" in out.getvalue()

    policies = {p.environment.name: p for p in environment_policies_current().values()}
    assert not policies["dev"].needs_change_request
    assert policies["test"].needs_peer_review and not policies["test"].approval_teams.exists()
    prod = policies["prod"]
    assert [t.slug for t in prod.approval_teams.order_by("slug")] == [
        "model-risk",
        "platform-operations",
        "release-management",
    ]
    assert (prod.soak_source.name, prod.soak_days, prod.retrospective_hours) == ("test", 7, 72)
    assert prod.emergency_allowed
    assert FreezeWindow.objects.filter(environment__name="prod").count() == 1
    assert MaintenanceWindow.objects.filter(environment__name="prod").count() == 1

    # A standard change template, approved by prod's three teams, and a retraining deployed in
    # test under it with its peer review alone.
    approval = ChangeRequest.objects.get(kind=Kind.STANDARD_TEMPLATE)
    assert approval.state == State.APPROVED
    assert approval.sign_offs.filter(kind=SignOffKind.APPROVAL).count() == 3
    standard = ChangeRequest.objects.get(kind=Kind.STANDARD)
    assert standard.standard_template_id == approval.standard_template_id
    assert (standard.state, standard.risk_level) == (State.DEPLOYED, "low")
    assert [s.kind for s in standard.sign_offs.all()] == [SignOffKind.PEER_REVIEW]
    assert AuditEvent.objects.filter(action=AuditAction.STANDARD_TEMPLATE_USED).count() == 1

    states = set(ChangeRequest.objects.values_list("state", flat=True))
    assert {
        State.IN_REVIEW,
        State.IN_APPROVAL,
        State.APPROVED,
        State.REJECTED,
        State.AWAITING_AUTHORISATION,
    } <= states
    users = get_user_model().objects
    for username in ("peer", "risk", "release", "platform", "changemgr"):
        assert change_requests_waiting_for(user=users.get(username=username)), username

    counts = (
        ChangeRequest.objects.count(),
        SignOff.objects.count(),
        EnvironmentPolicy.objects.count(),
        AuditEvent.objects.count(),
    )
    demo.seed(io.StringIO())
    assert (
        ChangeRequest.objects.count(),
        SignOff.objects.count(),
        EnvironmentPolicy.objects.count(),
        AuditEvent.objects.count(),
    ) == counts
