"""Rule 13 (issue 14, hole 3): an approved change must satisfy the policy in force when it
deploys. Tightening the policy sends approved changes back for the missing signatures only, and
the gate refuses, naming them, an approved change the policy in force asks more of."""

import pytest

from audit.models import AuditEvent
from portal.models import Notification, Team
from releases.builders import file_change, sign
from releases.models import EnvironmentPolicy
from releases.selectors.policy import environment_policy_current
from releases.services import policy
from releases.states import State

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved_in_test(envs, builds, requester, peer, clock):
    """test asks for a peer review only; this change has it and is approved."""
    change = file_change(
        requester=requester,
        model_version=builds["1.0"],
        environment=envs["test"],
        signers=[peer],
        window_start=clock.now,
    )
    assert change.state == State.APPROVED
    return change


def question(build) -> dict:
    return {"environment": "test", "model": build.model.name, "version": build.version}


def test_tightening_the_policy_sends_an_approved_change_back_for_the_new_team(
    approved_in_test, envs, builds, ci, model_risk_approver, login, django_clock
):
    model_risk = Team.objects.get(slug="model-risk")
    before = AuditEvent.objects.count()
    policy.environment_policy_change(
        actor=None, environment=envs["test"], approval_teams=[model_risk]
    )
    approved_in_test.refresh_from_db()
    assert approved_in_test.state == State.IN_APPROVAL
    reopened = AuditEvent.objects.filter(seq__gt=before, action="change_request.reopened").get()
    assert reopened.data["missing_teams"] == ["model-risk"]
    assert reopened.data["peer_review_missing"] is False
    assert approved_in_test.sign_offs.filter(voided_at__isnull=True).count() == 1
    assert Notification.objects.filter(
        recipient=model_risk_approver, key__startswith=f"cr:{approved_in_test.pk}:waiting:"
    ).exists()

    answer = ci.client().post("/api/v1/gate/", question(builds["1.0"]), format="json").json()
    assert [reason["code"] for reason in answer["reasons"]] == ["no_approved_change"]
    page = login(model_risk_approver).get(f"/releases/change-requests/{approved_in_test.number}/")
    assert "In approval" in page.content.decode()

    sign(model_risk_approver, approved_in_test)
    approved_in_test.refresh_from_db()
    assert approved_in_test.state == State.APPROVED
    assert ci.client().post("/api/v1/gate/", question(builds["1.0"])).json()["allowed"] is True


def test_the_gate_refuses_an_approval_the_policy_in_force_asks_more_of(
    approved_in_test, envs, builds, ci, django_clock
):
    """A policy row written behind the service's back (no reopening): the gate still judges by
    the policy in force and names what is missing."""
    current = environment_policy_current(environment=envs["test"])
    stricter = EnvironmentPolicy.objects.create(
        environment=envs["test"],
        version=current.version + 1,
        needs_change_request=True,
        needs_peer_review=True,
        created_by_name="direct SQL",
    )
    stricter.approval_teams.set(Team.objects.filter(slug="platform-operations"))

    answer = ci.client().post("/api/v1/gate/", question(builds["1.0"]), format="json").json()
    assert [reason["code"] for reason in answer["reasons"]] == ["policy_changed"]
    assert "Platform Operations" in answer["reasons"][0]["message"]
    assert answer["policy_version"] == current.version + 1
    start = ci.client().post("/api/v1/deployments/", question(builds["1.0"]), format="json")
    assert start.status_code == 403
    assert [reason["code"] for reason in start.json()["reasons"]] == ["policy_changed"]
