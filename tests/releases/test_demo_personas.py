"""The lived-in demo (issue 8): weeks of history with a rollback and an emergency change whose
retrospective is overdue, every persona finds something to do on the dashboard, and loading the
demo again changes nothing."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent
from releases.models import ChangeRequest, Deployment, DeploymentKind, SignOff, SignOffKind
from releases.selectors.change_requests import change_requests_waiting_for, emergency_overview
from releases.selectors.dashboard import my_open_changes
from releases.states import Kind, State

pytestmark = pytest.mark.django_db

WAITING_BADGE = 'Waiting for me <span class="badge warn">'


def snapshot() -> tuple:
    return (
        list(ChangeRequest.objects.order_by("pk").values_list("pk", "state", "title")),
        list(SignOff.objects.order_by("pk").values_list("pk", "signer_id", "decision")),
        list(Deployment.objects.order_by("pk").values_list("pk", "status", "succeeded_at")),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def demo(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", stdout=StringIO())
    return {user.username: user for user in get_user_model().objects.all()}


def test_loading_the_demo_again_changes_nothing(demo):
    first = snapshot()
    call_command("seed_demo", stdout=StringIO())
    assert snapshot() == first


def test_an_emergency_change_with_its_retrospective_overdue_and_work_for_everyone(demo, login):
    emergency = ChangeRequest.objects.get(kind=Kind.EMERGENCY, state=State.RETRO_REVIEW)
    assert emergency.deployments.filter(succeeded_at__isnull=False).exists()
    assert emergency.retrospective_due_at < timezone.now()
    assert emergency.sign_offs.filter(kind=SignOffKind.RETROSPECTIVE).count() == 2
    row = next(row for row in emergency_overview() if row.change_request == emergency)
    assert row.overdue
    assert [team.slug for team in row.owed] == ["model-risk"]
    assert Deployment.objects.filter(kind=DeploymentKind.ROLLBACK).exists()

    for username in ("peer", "risk", "release", "platform", "changemgr"):
        assert change_requests_waiting_for(user=demo[username]), username
    owed_by_risk = [item.slot.kind for item in change_requests_waiting_for(user=demo["risk"])]
    assert SignOffKind.RETROSPECTIVE in owed_by_risk
    mine = my_open_changes(user=demo["requester"], now=timezone.now())
    assert mine[0].state == State.DRAFT
    assert {State.APPROVED, State.IN_APPROVAL, State.RETRO_REVIEW} <= {c.state for c in mine}

    # Each persona lands on a dashboard with something to do.
    for username, sees in [
        ("requester", ["My change requests", "File it", "Waiting for a peer review"]),
        ("peer", ["Waiting for me", "Peer review (Data Science)"]),
        ("risk", ["Retrospective (Model Risk)", "retrospective overdue"]),
        ("release", [WAITING_BADGE, "CR-"]),
        ("platform", [WAITING_BADGE, "CR-"]),
        ("changemgr", ["Emergency authorisation", "retrospective overdue"]),
        ("auditor", ["retrospective overdue", "unauthorised change"]),
    ]:
        page = login(demo[username]).get("/").content.decode()
        for text in sees:
            assert text in page, (username, text)
