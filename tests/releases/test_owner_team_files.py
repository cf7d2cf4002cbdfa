"""Rule 2 (issue 14, hole 4): only members of the model's owner team file its changes, and that
team peer-reviews them; another team can neither file one nor review it in its own circle."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from organisation import services as organisation
from portal.exceptions import RuleDenied
from portal.models import Team
from releases.builders import change_fields, sign
from releases.models import ChangeRequest
from releases.services import change_requests

pytestmark = pytest.mark.django_db


def filing(version, environment) -> dict:
    start = timezone.now() + timedelta(days=3)
    return {
        "model": version.model.name,
        "version": version.version,
        "environment": environment.name,
        "title": f"Release {version}",
        "justification": "Better recall.",
        "rollback_plan": "Roll back to the live version.",
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(hours=4)).isoformat(),
    }


def test_another_team_cannot_file_a_change_for_the_model(envs, version, model_risk_approver, login):
    client = APIClient()
    client.force_authenticate(model_risk_approver)
    refused = client.post("/api/v1/change-requests/", filing(version, envs["prod"]), format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "not_owner_team"

    start = timezone.now() + timedelta(days=2)
    page = login(model_risk_approver).post(
        "/releases/change-requests/new/",
        {
            "model_version": version.pk,
            "environment": envs["prod"].pk,
            "title": "Release 1.0.0",
            "justification": "Better recall.",
            "rollback_plan": "Roll back.",
            "window_start": start.strftime("%Y-%m-%dT%H:%M"),
            "window_end": (start + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"),
            "action": "file",
        },
    )
    assert page.status_code in (200, 403)
    assert "Only members of Data Science" in page.content.decode()
    assert not ChangeRequest.objects.exists()


def test_a_member_of_two_teams_files_in_the_owner_team_and_it_reviews(
    envs, version, requester, peer, model_risk_approver
):
    """The requester also joins Model Risk: naming that team is refused, and a Model Risk
    colleague cannot give the peer review; the owner team's member can."""
    model_risk = Team.objects.get(slug="model-risk")
    organisation.membership_set(actor=None, user=requester, team=model_risk)
    fields = change_fields(version, envs["prod"])
    with pytest.raises(RuleDenied) as refused:
        change_requests.change_request_file(actor=requester, team=model_risk, **fields)
    assert refused.value.code == "not_owner_team"

    change = change_requests.change_request_file(actor=requester, **fields)
    assert change.team.slug == "data-science"
    with pytest.raises(RuleDenied) as not_a_peer:
        sign(model_risk_approver, change)
    assert not_a_peer.value.code == "not_a_peer"
    assert sign(peer, change).kind == "peer_review"
