"""The risk score (issue 18, rule 18): named factors from a hand-built history, stored at
submission with the policy version it cites and never changed afterwards; and the policy's
mapping of the level to a path, both ways, never under production's floor."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model

from audit.actions import AuditAction
from audit.models import AuditEvent
from organisation import services as organisation
from organisation.demo import DEMO_PASSWORD
from portal.exceptions import Conflict
from portal.models import Scope, Team
from registry import services as registry
from registry.builders import build_register
from releases.builders import APPROVAL_TEAMS, deploy, file_change, sign
from releases.services import policy
from releases.services.deployments import deployment_rollback
from releases.states import State
from tests.conftest import make_service_caller

pytestmark = pytest.mark.django_db


def person(username: str, team: Team, *, approver: bool = False):
    user = get_user_model().objects.create_user(
        username=username, password=DEMO_PASSWORD, email=f"{username}@bank.example"
    )
    organisation.membership_set(actor=None, user=user, team=team, is_approver=approver)
    return user


@pytest.fixture
def pricing(org, envs, clock):
    """The pricing team, whose model price-score (tier 1) was rolled back twice in test in the
    last month: 1.0 went live, 1.1 and 1.2 each went live and were rolled back."""
    team = organisation.team_create(actor=None, name="Pricing", slug="pricing")
    requester, peer = person("rollo", team), person("pia", team)
    pipeline = make_service_caller(team, "pricing-ci", list(Scope.values)).account
    registry.model_register(actor=None, name="price-score", owner_team="pricing", risk_tier=1)
    builds = {n: build_register("price-score", n, owner_team="pricing") for n in "0123"}
    clock.advance(days=-30)
    for number in ("0", "1", "2"):
        change = file_change(
            requester=requester,
            model_version=builds[number],
            environment=envs["test"],
            signers=[peer],
            window_start=clock.now,
            now=clock.now,
        )
        deploy(
            actor=pipeline,
            environment=envs["test"],
            model_version=builds[number],
            change_request=change,
            clock=clock,
        )
        clock.advance(hours=2)
        if number != "0":
            deployment_rollback(
                actor=requester,
                environment="test",
                model="price-score",
                reason="Scores drifted.",
                now=clock.now,
            )
        clock.advance(days=1)
    clock.advance(days=27)
    return {"team": team, "requester": requester, "peer": peer, "builds": builds}


def factors(change) -> dict[str, tuple[str, int]]:
    return {factor["name"]: (factor["value"], factor["points"]) for factor in change.risk_factors}


def test_a_clean_record_and_two_rollbacks_score_by_their_factors(
    pricing, envs, builds, requester, clock
):
    clean = file_change(
        requester=requester, model_version=builds["1.0"], environment=envs["test"], now=clock.now
    )
    rolled = file_change(
        requester=pricing["requester"],
        model_version=pricing["builds"]["3"],
        environment=envs["test"],
        now=clock.now,
    )

    assert factors(clean) == {
        "Model tier": ("tier 2", 15),
        "Change type": ("normal", 10),
        "Size of the diff since what is live": ("nothing is live there yet", 10),
        "Test evidence": ("no soak asked; pipeline not reported", 5),
        "Track record of fraud-score (90 days)": (
            "0 rollback(s), 0 emergency change(s), 0 unauthorised change(s), change failure "
            "rate no data",
            0,
        ),
        "Track record of Data Science (90 days)": (
            "0 rollback(s), 0 emergency change(s), 0 unauthorised change(s), change failure "
            "rate no data",
            0,
        ),
    }
    assert (clean.risk_score, clean.risk_level) == (40, "medium")
    record = (
        "2 rollback(s), 0 emergency change(s), 0 unauthorised change(s), change failure rate "
        "67% of 3"
    )
    assert factors(rolled)["Model tier"] == ("tier 1", 30)
    assert factors(rolled)["Track record of price-score (90 days)"] == (record, 30)
    assert factors(rolled)["Track record of Pricing (90 days)"] == (record, 30)
    assert factors(rolled)["Size of the diff since what is live"][1] == 15
    assert (rolled.risk_score, rolled.risk_level) == (120, "high")
    assert rolled.risk_policy == envs["test"].policies.order_by("-version").first()
    submitted = AuditEvent.objects.filter(
        action=AuditAction.CHANGE_REQUEST_SUBMITTED, object_id=str(rolled.pk)
    ).get()
    assert submitted.data["risk"]["score"] == 120
    assert submitted.data["risk"]["policy_version"] == rolled.risk_policy.version


def test_the_score_never_changes_after_submission(pricing, envs, clock):
    change = file_change(
        requester=pricing["requester"],
        model_version=pricing["builds"]["3"],
        environment=envs["test"],
        window_start=clock.now,
        now=clock.now,
    )
    stored = (change.risk_score, change.risk_level, change.risk_factors)
    sign(pricing["peer"], change, now=clock.now)
    change.refresh_from_db()

    assert change.state == State.APPROVED
    assert (change.risk_score, change.risk_level, change.risk_factors) == stored


@pytest.fixture
def cab(org):
    """A change advisory board team with one approver."""
    team = organisation.team_create(actor=None, name="Change Advisory Board", slug="cab")
    return {"team": team, "approver": person("cabby", team, approver=True)}


def test_prod_refuses_low_risk_teams_under_its_floor(envs):
    teams = list(Team.objects.filter(slug__in=APPROVAL_TEAMS))
    prod = policy.environment_update(
        actor=None, environment=envs["prod"], rank=3, description="", is_production=True
    )

    with pytest.raises(Conflict) as refused:
        policy.environment_policy_change(
            actor=None,
            environment=prod,
            approval_teams=teams,
            soak_source=envs["test"],
            soak_days=7,
            low_risk_approval_teams=teams[:2],
        )

    assert refused.value.code == "production_policy_too_weak"
    assert "low-risk change through with 2 approval team(s)" in refused.value.detail


def test_low_risk_needs_fewer_teams_and_high_risk_adds_the_cab(
    envs, builds, pricing, cab, requester, peer, model_risk_approver, release_approver, clock
):
    """test asks Model Risk and Release Management; a low-risk change only Release Management,
    a high-risk one the CAB as well."""
    risk, release = Team.objects.get(slug="model-risk"), Team.objects.get(slug="release-management")
    policy.environment_policy_change(
        actor=None,
        environment=envs["test"],
        approval_teams=[risk, release],
        low_risk_approval_teams=[release],
        high_risk_team=cab["team"],
    )
    registry.model_register(actor=None, name="tiny", owner_team="data-science", risk_tier=3)
    low = file_change(
        requester=requester,
        model_version=build_register("tiny", "1.0"),
        environment=envs["test"],
        signers=[peer, release_approver],
        now=clock.now,
    )
    medium = file_change(
        requester=requester,
        model_version=builds["1.0"],
        environment=envs["test"],
        signers=[peer, release_approver],
        now=clock.now,
    )
    high = file_change(
        requester=pricing["requester"],
        model_version=pricing["builds"]["3"],
        environment=envs["test"],
        signers=[pricing["peer"], model_risk_approver, release_approver],
        now=clock.now,
    )

    assert (low.risk_level, low.state) == ("low", State.APPROVED)
    assert (medium.risk_level, medium.state) == ("medium", State.IN_APPROVAL)
    assert (high.risk_level, high.state) == ("high", State.IN_APPROVAL)
    sign(cab["approver"], high, now=clock.now)
    high.refresh_from_db()
    assert high.state == State.APPROVED
    assert sorted(s.team.slug for s in high.sign_offs.filter(kind="approval")) == [
        "cab",
        "model-risk",
        "release-management",
    ]


def test_a_new_high_risk_team_sends_an_approved_high_risk_change_back_for_it(
    envs, pricing, cab, model_risk_approver, release_approver, clock
):
    risk, release = Team.objects.get(slug="model-risk"), Team.objects.get(slug="release-management")
    policy.environment_policy_change(
        actor=None, environment=envs["test"], approval_teams=[risk, release]
    )
    high = file_change(
        requester=pricing["requester"],
        model_version=pricing["builds"]["3"],
        environment=envs["test"],
        signers=[pricing["peer"], model_risk_approver, release_approver],
        window_start=clock.now,
        now=clock.now,
    )
    assert high.state == State.APPROVED
    policy.environment_policy_change(
        actor=None,
        environment=envs["test"],
        approval_teams=[risk, release],
        high_risk_team=cab["team"],
    )
    high.refresh_from_db()

    assert high.state == State.IN_APPROVAL
    sign(cab["approver"], high, now=clock.now + timedelta(minutes=1))
    high.refresh_from_db()
    assert high.state == State.APPROVED


def test_the_api_gives_the_score_with_its_factors_and_policy_version(
    login, requester, envs, builds, clock
):
    change = file_change(
        requester=requester, model_version=builds["1.0"], environment=envs["test"], now=clock.now
    )

    body = login(requester).get(f"/api/v1/change-requests/{change.number}/").json()

    assert body["risk_score"]["score"] == 40 and body["risk_score"]["level"] == "medium"
    assert body["risk_score"]["factors"][0] == {
        "name": "Model tier",
        "value": "tier 2",
        "points": 15,
    }
    assert body["risk_score"]["policy_version"] == change.risk_policy.version
    assert body["standard_template"] is None
