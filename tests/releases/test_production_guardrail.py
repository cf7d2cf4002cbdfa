"""Rule 13's guardrail (issue 14, hole 3): an environment marked as production cannot get a
policy under GATEHOUSE_MIN_PROD_TEAMS approval teams, without a peer review or without a soak,
through the service or the admin; and the admin previews what a policy version would do to the
open changes before it saves it."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from portal.exceptions import Conflict
from portal.models import Team
from releases.builders import APPROVAL_TEAMS, file_change
from releases.models import EnvironmentPolicy
from releases.selectors.policy import environment_policy_current
from releases.services import policy
from releases.states import State

pytestmark = pytest.mark.django_db


@pytest.fixture
def prod(envs):
    """The demo's prod (three teams, peer review, seven days in test), marked as production."""
    return policy.environment_update(
        actor=None,
        environment=envs["prod"],
        rank=envs["prod"].rank,
        description=envs["prod"].description,
        is_production=True,
    )


def teams(*slugs: str) -> list[Team]:
    return list(Team.objects.filter(slug__in=slugs).order_by("slug"))


def strong_rules(envs) -> dict:
    return {
        "approval_teams": teams(*APPROVAL_TEAMS),
        "needs_peer_review": True,
        "soak_source": envs["test"],
        "soak_days": 7,
    }


@pytest.mark.parametrize(
    ("weakening", "says"),
    [
        ({"approval_teams": ()}, "names 0 approval team(s) where production needs at least 3"),
        ({"approval_teams": ("model-risk", "release-management")}, "names 2 approval team(s)"),
        ({"needs_peer_review": False}, "must require a peer review"),
        ({"soak_days": 0}, "must require a soak"),
        ({"soak_source": None}, "must require a soak"),
        ({"needs_change_request": False}, "must require a change request"),
    ],
)
def test_a_production_policy_under_the_floor_is_refused_and_writes_nothing(
    prod, envs, weakening, says
):
    if "approval_teams" in weakening:
        weakening = {"approval_teams": teams(*weakening["approval_teams"])}
    versions, events = EnvironmentPolicy.objects.count(), AuditEvent.objects.count()
    with pytest.raises(Conflict) as refused:
        policy.environment_policy_change(
            actor=None, environment=prod, **{**strong_rules(envs), **weakening}
        )
    assert refused.value.code == "production_policy_too_weak"
    assert says in refused.value.detail
    assert (EnvironmentPolicy.objects.count(), AuditEvent.objects.count()) == (versions, events)


def test_the_floor_follows_the_setting_and_leaves_other_environments_free(prod, envs, settings):
    settings.GATEHOUSE_MIN_PROD_TEAMS = 2
    two = teams("model-risk", "release-management")
    saved = policy.environment_policy_change(
        actor=None, environment=prod, **{**strong_rules(envs), "approval_teams": two}
    )
    assert saved.approval_teams.count() == 2
    loose = policy.environment_policy_change(
        actor=None, environment=envs["test"], approval_teams=[], needs_peer_review=False
    )
    assert loose.version == 2


def test_marking_production_is_refused_while_its_policy_is_weak_and_audited_when_not(envs):
    test = envs["test"]
    with pytest.raises(Conflict) as refused:
        policy.environment_update(
            actor=None,
            environment=test,
            rank=test.rank,
            description=test.description,
            is_production=True,
        )
    assert refused.value.code == "production_policy_too_weak"
    test.refresh_from_db()
    assert test.is_production is False

    prod = envs["prod"]
    policy.environment_update(
        actor=None,
        environment=prod,
        rank=prod.rank,
        description=prod.description,
        is_production=True,
    )
    event = AuditEvent.objects.filter(action="environment.updated").latest("seq")
    assert event.data["before"]["is_production"] is False
    assert event.data["after"]["is_production"] is True


def policy_form(envs, **changes) -> dict:
    """The admin's change form for the next policy version, as a browser posts it."""
    form = {
        "needs_change_request": "on",
        "needs_peer_review": "on",
        "approval_teams": [team.pk for team in teams(*APPROVAL_TEAMS)],
        "soak_source": envs["test"].pk,
        "soak_days": "7",
        "emergency_allowed": "on",
        "retrospective_hours": "72",
        "retrospective_excludes_authoriser": "on",
        "_save": "Save",
    }
    form.update(changes)
    return {name: value for name, value in form.items() if value is not None}


def test_the_admin_shows_the_refusal_before_saving_and_cannot_be_forced(
    prod, envs, login, administrator
):
    admin = login(administrator)
    url = reverse("admin:releases_environmentpolicy_change", args=[prod.policies.latest().pk])
    weak = policy_form(envs, approval_teams=[teams("model-risk")[0].pk])

    preview = admin.post(url, weak)
    page = preview.content.decode()
    assert preview.status_code == 200
    assert 'data-testid="policy-refusals"' in page
    assert "prod is a production environment" in page
    assert "names 1 approval team(s)" in page
    assert "_confirm_policy" not in page

    forced = admin.post(url, {**weak, "_confirm_policy": "Save"}, follow=True)
    assert "production environment" in forced.content.decode()
    assert environment_policy_current(environment=prod).version == 1


def test_the_admin_previews_the_changes_a_policy_affects_then_saves_on_confirmation(
    envs, builds, requester, peer, clock, login, administrator
):
    approved = file_change(
        requester=requester,
        model_version=builds["1.0"],
        environment=envs["test"],
        signers=[peer],
        window_start=clock.now,
    )
    pending = file_change(
        requester=requester,
        model_version=builds["1.1"],
        environment=envs["test"],
        signers=[],
        window_start=clock.now,
    )
    assert (approved.state, pending.state) == (State.APPROVED, State.IN_REVIEW)
    admin = login(administrator)
    url = reverse("admin:releases_environmentpolicy_change", args=[envs["test"].policies.get().pk])
    stricter = policy_form(
        envs, approval_teams=[teams("model-risk")[0].pk], soak_source=None, soak_days="0"
    )

    preview = admin.post(url, stricter).content.decode()
    assert f"{approved.number} {approved.title}" in preview
    assert "goes back to in approval, waiting for Model Risk" in preview
    assert f"{pending.number} {pending.title}" in preview
    assert "will also wait for approval from Model Risk" in preview
    approved.refresh_from_db()
    assert approved.state == State.APPROVED
    assert envs["test"].policies.count() == 1

    saved = admin.post(url, {**stricter, "_confirm_policy": "Save this policy version"})
    assert saved.status_code == 302
    approved.refresh_from_db()
    assert approved.state == State.IN_APPROVAL
    assert environment_policy_current(environment=envs["test"]).version == 2
    assert AuditEvent.objects.filter(action="environment_policy.changed").latest(
        "seq"
    ).actor_name == ("admin")
