"""What releases puts on the dashboard (registered in `ReleasesConfig.ready()`): what needs
everyone's attention, what waits for the person's signature, and their own change requests.
Each function gives its panel's context for one person, or None to leave the panel out."""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.utils import timezone

from audit.selectors import can_read_audit
from portal.models import Membership
from releases.models import ReconciliationFinding, UnauthorisedChange
from releases.selectors.change_requests import change_requests_waiting_for, emergency_overview
from releases.selectors.dashboard import my_open_changes


def needs_attention(*, user: AbstractBaseUser) -> dict[str, Any] | None:
    """What everyone should see: emergency changes still owing retrospective reviews (overdue
    ones first, rule 11) and unreviewed unauthorised changes (rule 14). Nothing on a quiet day."""
    emergencies = [row for row in emergency_overview() if row.owed]
    unauthorised = list(
        UnauthorisedChange.objects.filter(reviewed_at__isnull=True).select_related(
            "environment", "model", "deployment__model_version"
        )[:20]
    )
    if not emergencies and not unauthorised:
        return None
    return {"emergencies": emergencies, "unauthorised": unauthorised}


def reconciliation_findings(*, user: AbstractBaseUser) -> dict[str, Any] | None:
    """Rule 17, for the change managers and auditors: rows the audit trail does not explain,
    newest first. Nothing when reconciliation found nothing."""
    if not can_read_audit(user):
        return None
    open_findings = ReconciliationFinding.objects.filter(resolved_at__isnull=True)
    findings = list(open_findings.select_related("change_request")[:20])
    if not findings:
        return None
    return {"findings": findings, "more": max(open_findings.count() - len(findings), 0)}


def waiting_for_me(*, user: AbstractBaseUser) -> dict[str, Any]:
    return {"waiting_items": change_requests_waiting_for(user=user)}


def my_changes(*, user: AbstractBaseUser) -> dict[str, Any] | None:
    """The person's unfinished change requests; no panel for an approver with none, whose work
    is under Waiting for me."""
    changes = my_open_changes(user=user, now=timezone.now())
    signer = Membership.objects.filter(
        Q(is_approver=True) | Q(is_emergency_approver=True), user_id=user.pk
    )
    if not changes and signer.exists():
        return None
    return {"mine": changes}
