"""Emergency changes (rule 11): filing, authorisation by someone else, the 24-hour validity,
retrospective sign-offs by every approval team, and the block while one is overdue."""

from datetime import timedelta

import pytest
from django.utils import timezone

from organisation import services as org_services
from portal.exceptions import RuleDenied
from registry.builders import build_register
from releases.builders import change_fields, deployment_row, sign
from releases.models import ChangeRequest
from releases.services import change_requests as services
from releases.services import policy
from releases.states import Kind, State

pytestmark = pytest.mark.django_db


@pytest.fixture
def file_emergency(requester, envs, version):
    def file(actor=None, **overrides):
        fields = change_fields(
            version,
            envs["prod"],
            kind=Kind.EMERGENCY,
            incident_ref="INC-4711",
            justification="Fraud losses spike since the card scheme change.",
            window_start=None,
            window_end=None,
        )
        return services.change_request_file(actor=actor or requester, **{**fields, **overrides})

    return file


def mark_deployed(change_request):
    """A successful deployment row, then the service under test: the emergency's own steps,
    without the gate."""
    deployment = deployment_row(
        environment=change_request.environment,
        model_version=change_request.model_version,
        change_request=change_request,
    )
    return services.change_request_mark_deployed(
        change_request=change_request, deployment=deployment
    )


def test_filing_needs_an_incident_and_a_justification(file_emergency):
    with pytest.raises(RuleDenied) as error:
        file_emergency(incident_ref="")
    assert error.value.code == "incident_required"
    with pytest.raises(RuleDenied) as error:
        file_emergency(justification="  ")
    assert error.value.code == "incident_required"
    change_request = file_emergency()
    assert change_request.state == State.AWAITING_AUTHORISATION
    assert change_request.window_start is None


def test_only_where_the_policy_allows_emergencies(org, envs, file_emergency):
    policy.environment_policy_change(
        actor=None, environment=envs["prod"], approval_teams=[], emergency_allowed=False
    )
    with pytest.raises(RuleDenied) as error:
        file_emergency()
    assert error.value.code == "emergency_not_allowed"


def test_an_emergency_skips_the_freeze(envs, file_emergency):
    now = timezone.now()
    policy.freeze_window_create(
        actor=None,
        environment=envs["prod"],
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=5),
        reason="Year-end",
    )
    assert file_emergency().state == State.AWAITING_AUTHORISATION


def test_authorised_by_an_emergency_approver_for_24_hours(file_emergency, change_manager):
    change_request = file_emergency()
    sign_off = sign(change_manager, change_request)
    change_request.refresh_from_db()
    assert change_request.state == State.AUTHORISED
    assert sign_off.kind == "emergency_authorisation"
    assert sign_off.team.slug == "release-management"
    assert sign_off.meaning.startswith(f"I authorise emergency change {change_request.number}")
    assert change_request.window_end - change_request.window_start == timedelta(hours=24)
    assert abs(change_request.window_start - timezone.now()) < timedelta(minutes=1)


def test_the_requester_cannot_authorise_their_own_emergency(org, file_emergency, requester):
    org_services.membership_set(
        actor=None, user=requester, team=org["data-science"], is_emergency_approver=True
    )
    change_request = file_emergency()
    with pytest.raises(RuleDenied) as error:
        sign(requester, change_request)
    assert error.value.code == "own_change"


def test_someone_without_the_emergency_role_cannot_authorise(file_emergency, model_risk_approver):
    with pytest.raises(RuleDenied) as error:
        sign(model_risk_approver, file_emergency())
    assert error.value.code == "not_an_emergency_approver"


def test_a_refused_emergency_is_rejected(file_emergency, change_manager):
    change_request = file_emergency()
    sign(change_manager, change_request, decision="reject", comment="Not urgent")
    change_request.refresh_from_db()
    assert change_request.state == State.REJECTED


def test_retrospective_by_every_team_after_deployment_then_closed(
    file_emergency, change_manager, model_risk_approver, release_approver, platform_approver
):
    change_request = file_emergency()
    sign(change_manager, change_request)
    deployed = mark_deployed(change_request)
    assert deployed.state == State.RETRO_REVIEW
    assert deployed.retrospective_due_at - timezone.now() > timedelta(hours=71)
    assert deployed.retrospective_due_at - timezone.now() <= timedelta(hours=72)

    first = sign(model_risk_approver, deployed)
    assert first.kind == "retrospective"
    assert "after the fact" in first.meaning
    with pytest.raises(RuleDenied) as error:
        sign(model_risk_approver, deployed)
    assert error.value.code == "already_signed"
    sign(release_approver, deployed, decision="reject", comment="Should have been planned")
    deployed.refresh_from_db()
    assert deployed.state == State.RETRO_REVIEW
    sign(platform_approver, deployed)
    deployed.refresh_from_db()
    assert deployed.state == State.CLOSED


def test_an_overdue_retrospective_blocks_a_new_emergency_for_that_model(
    org, file_emergency, change_manager, requester, envs
):
    change_request = file_emergency()
    sign(change_manager, change_request)
    mark_deployed(change_request)
    assert file_emergency().state == State.AWAITING_AUTHORISATION

    ChangeRequest.objects.filter(pk=change_request.pk).update(
        retrospective_due_at=timezone.now() - timedelta(minutes=1)
    )
    with pytest.raises(RuleDenied) as error:
        file_emergency()
    assert error.value.code == "retrospective_overdue"
    assert change_request.number in error.value.detail

    other = build_register("churn-model", "1.0.0")
    assert file_emergency(model_version=other).state == State.AWAITING_AUTHORISATION


def test_pages_show_the_retrospective_owed_and_overdue(
    file_emergency, change_manager, model_risk_approver, login
):
    change_request = file_emergency()
    client = login(change_manager)
    page = client.get(f"/releases/change-requests/{change_request.number}/").content.decode()
    assert "Sign: Emergency authorisation" in page
    sign(change_manager, change_request)
    mark_deployed(change_request)
    sign(model_risk_approver, change_request)
    ChangeRequest.objects.filter(pk=change_request.pk).update(
        retrospective_due_at=timezone.now() - timedelta(hours=1)
    )
    listing = client.get("/releases/emergencies/").content.decode()
    assert change_request.number in listing and "Overdue" in listing
    assert "Platform Operations" in listing and "Release Management" in listing
    page = (
        login(model_risk_approver)
        .get(f"/releases/change-requests/{change_request.number}/")
        .content.decode()
    )
    assert "Retrospective (Model Risk)" in page and "after the fact" in page
