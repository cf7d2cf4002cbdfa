"""Rule 11 (issue 14, hole 9): the change manager who authorised an emergency change does not
review it afterwards, for any team, while the policy keeps that on (its default); the page does
not offer them the retrospective either."""

import pytest

from organisation import services as organisation
from portal.exceptions import RuleDenied
from portal.models import Team
from releases.builders import deploy, file_change, sign
from releases.selectors.policy import environment_policy_current
from releases.services import policy
from releases.states import Kind, State

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewed_by_its_authoriser(envs, builds, ci, clock, requester, change_manager):
    """The change manager also holds the approver role in Release Management, one of prod's
    approval teams; they authorise an emergency change that is then deployed."""
    organisation.membership_set(
        actor=None,
        user=change_manager,
        team=Team.objects.get(slug="release-management"),
        is_approver=True,
        is_emergency_approver=True,
    )
    change = file_change(
        requester=requester,
        model_version=builds["1.0"],
        environment=envs["prod"],
        signers=[change_manager],
        kind=Kind.EMERGENCY,
        now=clock.now,
    )
    deploy(
        actor=ci.account,
        environment=envs["prod"],
        model_version=builds["1.0"],
        change_request=change,
        clock=clock,
    )
    change.refresh_from_db()
    assert change.state == State.RETRO_REVIEW
    return change


def test_the_authoriser_cannot_sign_the_retrospective(
    reviewed_by_its_authoriser, change_manager, release_approver, login
):
    change = reviewed_by_its_authoriser
    with pytest.raises(RuleDenied) as refused:
        sign(change_manager, change)
    assert refused.value.code == "authoriser_reviews"
    page = login(change_manager).get(f"/releases/change-requests/{change.number}/")
    assert f"/releases/change-requests/{change.number}/sign/" not in page.content.decode()
    posted = login(change_manager).post(
        f"/releases/change-requests/{change.number}/sign/",
        {
            "decision": "approve",
            "password": "gatehouse-demo",
            "comment": "",
            "content_digest": change.content_digest,
        },
    )
    assert posted.status_code == 403
    assert sign(release_approver, change).kind == "retrospective"


def test_a_policy_may_let_the_authoriser_review(reviewed_by_its_authoriser, envs, change_manager):
    current = environment_policy_current(environment=envs["prod"])
    policy.environment_policy_change(
        actor=None,
        environment=envs["prod"],
        approval_teams=current.approval_teams.all(),
        soak_source=current.soak_source,
        soak_days=current.soak_days,
        retrospective_excludes_authoriser=False,
    )
    assert sign(change_manager, reviewed_by_its_authoriser).kind == "retrospective"
