"""Rule 17, the trail vouches for the tables: whoever holds the application's database password
and edits rows with plain SQL (as the application role, the way an attacker would) is found out
by `manage.py audit_reconcile`, field by field, told to the change managers and auditors, and
held back at the gate (`record_inconsistent`, tested in test_gate.py)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from audit.replay import NO_EVENT, NO_ROW
from audit.services import auditor_add
from portal.models import Membership, Notification
from releases.builders import file_change, sign
from releases.models import ChangeRequest, Deployment, ReconciliationFinding, SignOff
from releases.reconciliation import discrepancies_find
from releases.services import change_requests
from releases.services.reconciliation import reconcile

pytestmark = pytest.mark.django_db


def sql(statement: str, params: list) -> None:
    """What the application role may run: no service, no audit event."""
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def audit_reconcile() -> tuple[int, str]:
    """Run the command as the hourly job does; (exit status, what it printed)."""
    out = StringIO()
    try:
        call_command("audit_reconcile", stdout=out)
    except SystemExit as stop:
        return stop.code, out.getvalue()
    return 0, out.getvalue()


def reported(object_type: str, object_id) -> dict[str, tuple[str, str]]:
    """field → (what the trail says, what the row holds) of the open findings on one row."""
    return {
        f.field: (f.expected, f.found)
        for f in ReconciliationFinding.objects.filter(
            object_type=object_type, object_id=str(object_id), resolved_at__isnull=True
        )
    }


@pytest.fixture
def in_review(envs, builds, requester, clock):
    """A test change filed and waiting for its peer review: no sign-off yet."""
    return file_change(
        model_version=builds["1.0"],
        environment=envs["test"],
        requester=requester,
        window_start=clock.now,
    )


def test_a_state_set_to_approved_by_sql_is_reported_by_object_and_field(in_review):
    sql("UPDATE releases_changerequest SET state = 'approved' WHERE id = %s", [in_review.pk])

    status, printed = audit_reconcile()

    assert status == 1
    assert reported("releases.changerequest", in_review.pk) == {"state": ("in_review", "approved")}
    assert f"releases.changerequest {in_review.pk} state" in printed
    finding = ReconciliationFinding.objects.get(object_id=str(in_review.pk))
    assert finding.change_request == in_review and finding.resolved_at is None


def test_a_sign_off_time_or_signer_edited_by_sql_is_reported(approved, requester):
    first, second = list(approved.sign_offs.order_by("pk"))[:2]
    sql(
        "UPDATE releases_signoff SET signed_at = %s WHERE id = %s",
        [first.signed_at - timedelta(days=3), first.pk],
    )
    sql("UPDATE releases_signoff SET signer_id = %s WHERE id = %s", [requester.pk, second.pk])

    status, _ = audit_reconcile()

    assert status == 1
    assert set(reported("releases.signoff", first.pk)) == {"signed_at"}
    assert reported("releases.signoff", second.pk) == {
        "signer": (str(second.signer_id), str(requester.pk))
    }
    # Both hold back the change request they belong to.
    assert set(
        ReconciliationFinding.objects.filter(change_request=approved).values_list(
            "object_id", flat=True
        )
    ) == {str(first.pk), str(second.pk)}


def test_a_deployment_inserted_without_an_event_is_reported(approved, envs, version):
    now = timezone.now()
    sql(
        "INSERT INTO releases_deployment (environment_id, model_id, model_version_id, "
        "change_request_id, kind, status, started_by_name, started_at, finished_at, "
        "succeeded_at, pipeline_url, health_url, detail, reason) "
        "VALUES (%s, %s, %s, %s, 'deploy', 'succeeded', 'ci-pipeline', %s, %s, %s, '', '', '', '')",
        [envs["prod"].pk, version.model_id, version.pk, approved.pk, now, now, now],
    )
    inserted = Deployment.objects.get(change_request=approved)

    status, _ = audit_reconcile()

    assert status == 1
    assert reported("releases.deployment", inserted.pk) == {"exists": (NO_EVENT, "row present")}
    assert ReconciliationFinding.objects.get(object_id=str(inserted.pk)).change_request == approved


def test_an_approver_role_granted_by_sql_is_reported(org, requester):
    membership = Membership.objects.get(user=requester, team=org["data-science"])
    assert not membership.is_approver
    sql("UPDATE portal_membership SET is_approver = %s WHERE id = %s", [True, membership.pk])

    status, _ = audit_reconcile()

    assert status == 1
    assert reported("portal.membership", membership.pk) == {
        "roles": ('["member"]', '["member", "approver"]')
    }


def test_a_clean_demo_reconciles_with_no_finding(db):
    """Every event the services write while seeding the demo explains its rows. (Events that
    transactional tests left behind name rows their flush removed: those are the only
    "no row" entries, and the demo removes nothing.)"""
    call_command("seed_demo", stdout=None)
    assert ChangeRequest.objects.exists() and SignOff.objects.exists()

    found = [d for d in discrepancies_find() if d.found != NO_ROW]

    assert found == []


def test_a_finding_is_told_once_and_resolved_when_the_row_matches_the_trail_again(
    in_review, change_manager, auditor, requester, login
):
    auditor_add(actor=None, user=auditor)
    sql("UPDATE releases_changerequest SET state = 'approved' WHERE id = %s", [in_review.pk])
    first = reconcile()
    second = reconcile()

    assert len(first.opened) == 1 and second.opened == [] and len(second.open) == 1
    told = Notification.objects.filter(key=f"reconciliation:{first.opened[0].pk}")
    assert {n.recipient.username for n in told} >= {change_manager.username, auditor.username}
    assert requester.username not in {n.recipient.username for n in told}
    assert "Not explained by the audit trail" in login(auditor).get("/").content.decode()
    assert "Not explained by the audit trail" not in login(requester).get("/").content.decode()
    opened_events = AuditEvent.objects.filter(action="reconciliation.finding_opened")
    assert opened_events.count() == 1

    sql("UPDATE releases_changerequest SET state = 'in_review' WHERE id = %s", [in_review.pk])
    third = reconcile()

    assert [f.pk for f in third.resolved] == [first.opened[0].pk] and third.open == []
    assert AuditEvent.objects.filter(action="reconciliation.finding_resolved").count() == 1


def test_the_hourly_job_reconciles(in_review):
    from portal.schedules import SCHEDULES
    from releases.tasks import audit_reconcile as hourly

    sql("UPDATE releases_changerequest SET state = 'approved' WHERE id = %s", [in_review.pk])

    assert hourly() == {"open": 1, "opened": 1}
    assert ("releases.tasks.audit_reconcile", 3600) in [
        (task, every) for _, task, every in SCHEDULES
    ]


def test_a_withdrawn_sign_off_and_a_cancelled_approval_are_explained_by_the_trail(
    approved, requester, model_risk_approver
):
    """Changing your mind (issue 14, hole 7) moves rows through services: nothing to report."""
    sign_off = approved.sign_offs.get(signer=model_risk_approver)
    change_requests.sign_off_withdraw(
        actor=model_risk_approver, sign_off=sign_off, reason="Wrong test data."
    )
    approved.refresh_from_db()
    assert approved.state == "in_approval"
    sign(model_risk_approver, approved)
    approved.refresh_from_db()
    change_requests.change_request_cancel(
        actor=requester, change_request=approved, reason="Superseded by 1.1."
    )
    assert discrepancies_find() == []
