"""Rule 14 (issue 14, hole 8): an unauthorised change reaches people at once (the model's owner
team, the environment's approvers, the change managers: mail and in the portal) and is escalated
to them again, once, when it stays unreviewed for 24 hours."""

from datetime import timedelta

import pytest

from audit.models import AuditEvent
from portal.models import Notification
from releases.builders import deploy
from releases.models import UnauthorisedChange
from releases.services.deployments import health_check_record, unauthorised_change_review
from releases.tasks import escalate_unauthorised_changes

pytestmark = pytest.mark.django_db


@pytest.fixture
def flagged(envs, builds, ci, clock):
    """1.0 live in dev; its health endpoint reports 1.1's digest."""
    deployment = deploy(
        actor=ci.account, environment=envs["dev"], model_version=builds["1.0"], clock=clock
    )
    health_check_record(
        deployment=deployment,
        ok=True,
        reported_sha256=builds["1.1"].artifact_sha256,
        now=clock.now,
    )
    return UnauthorisedChange.objects.get()


def told(user, flag, stage: str) -> bool:
    return Notification.objects.filter(
        recipient=user, key=f"unauthorised:{flag.pk}:{stage}"
    ).exists()


def test_the_flag_reaches_the_owner_team_and_the_change_managers_at_once(
    flagged, requester, peer, change_manager, auditor, login
):
    for person in (requester, peer, change_manager):
        assert told(person, flagged, "flagged"), person
    assert not told(auditor, flagged, "flagged")
    page = login(change_manager).get("/notifications/").content.decode()
    assert "Unauthorised change: fraud-score in dev" in page


def test_an_unreviewed_flag_is_escalated_once_after_a_day(
    flagged, clock, requester, change_manager, release_approver
):
    assert escalate_unauthorised_changes((clock.now + timedelta(hours=23)).isoformat()) == 0
    before = AuditEvent.objects.count()
    later = (clock.now + timedelta(hours=25)).isoformat()
    assert escalate_unauthorised_changes(later) == 1
    assert told(requester, flagged, "escalated") and told(change_manager, flagged, "escalated")
    escalated = AuditEvent.objects.filter(seq__gt=before).get()
    assert escalated.action == "deployment.unauthorised_change_escalated"
    assert escalate_unauthorised_changes(later) == 0


def test_a_reviewed_flag_is_not_escalated(flagged, clock, administrator):
    unauthorised_change_review(actor=administrator, flag=flagged, note="A manual hotfix; reverted.")
    assert escalate_unauthorised_changes((clock.now + timedelta(days=2)).isoformat()) == 0
