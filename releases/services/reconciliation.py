"""Rule 17: keep what reconciliation found. A field the trail does not explain opens a finding
(once, however many runs see it), which is audited, shown to change managers and auditors and
mailed to them, and which the gate reads; a finding a later run no longer sees is resolved."""

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.replay import Discrepancy
from audit.services import audit_record
from releases import notifications
from releases.models import (
    ChangeRequest,
    Deployment,
    EnvironmentPolicy,
    ReconciliationFinding,
    SignOff,
)
from releases.reconciliation import (
    CHANGE_REQUEST,
    DEPLOYMENT,
    POLICY,
    SIGN_OFF,
    discrepancies_find,
)


@dataclass(frozen=True)
class ReconciliationResult:
    opened: list[ReconciliationFinding]
    resolved: list[ReconciliationFinding]
    open: list[ReconciliationFinding]


def _links(discrepancy: Discrepancy) -> dict[str, int | None]:
    """The change request a finding holds back at the gate, and the policy version it
    concerns, where their rows exist."""
    object_type, pk = discrepancy.object_type, discrepancy.object_id
    change_request_id = policy_id = None
    if object_type == CHANGE_REQUEST:
        change_request_id = ChangeRequest.objects.filter(pk=pk).values_list("pk", flat=True).first()
    elif object_type == SIGN_OFF:
        change_request_id = SignOff.objects.filter(pk=pk).values_list("change_request", flat=True)
        change_request_id = change_request_id.first()
    elif object_type == DEPLOYMENT:
        change_request_id = Deployment.objects.filter(pk=pk).values_list(
            "change_request", flat=True
        )
        change_request_id = change_request_id.first()
    elif object_type == POLICY:
        policy_id = EnvironmentPolicy.objects.filter(pk=pk).values_list("pk", flat=True).first()
    return {"change_request_id": change_request_id, "policy_id": policy_id}


def _event_data(finding: ReconciliationFinding) -> dict[str, Any]:
    return {
        "object_type": finding.object_type,
        "object_id": finding.object_id,
        "field": finding.field,
        "expected": finding.expected,
        "found": finding.found,
        "last_event_seq": finding.last_event_seq,
    }


@transaction.atomic
def reconciliation_record(*, actor: Any, discrepancies: list[Discrepancy]) -> ReconciliationResult:
    """Open a finding for each discrepancy not already open, refresh those still seen, and
    resolve the open ones no longer seen. Each opening and resolution is an audit event; each
    opening is told to the change managers and auditors once."""
    now = timezone.now()
    open_findings = {
        (f.object_type, f.object_id, f.field): f
        for f in ReconciliationFinding.objects.select_for_update().filter(resolved_at__isnull=True)
    }
    seen = {d.key: d for d in discrepancies}
    opened, still_open, resolved = [], [], []
    for key, discrepancy in seen.items():
        finding = open_findings.get(key)
        if finding is not None:
            finding.expected, finding.found = discrepancy.expected, discrepancy.found
            finding.last_event_seq, finding.last_seen_at = discrepancy.seq, now
            finding.save(update_fields=["expected", "found", "last_event_seq", "last_seen_at"])
            still_open.append(finding)
            continue
        finding = ReconciliationFinding(
            object_type=discrepancy.object_type,
            object_id=discrepancy.object_id,
            field=discrepancy.field,
            expected=discrepancy.expected,
            found=discrepancy.found,
            last_event_seq=discrepancy.seq,
            first_seen_at=now,
            last_seen_at=now,
            **_links(discrepancy),
        )
        finding.full_clean()
        finding.save()
        opened.append(finding)
    for key, finding in open_findings.items():
        if key not in seen:
            finding.resolved_at = now
            finding.save(update_fields=["resolved_at"])
            resolved.append(finding)
    for finding in opened:
        notifications.reconciliation_finding(finding=finding)
        audit_record(
            actor=actor,
            action=AuditAction.RECONCILIATION_FINDING_OPENED,
            target=finding,
            data=_event_data(finding),
        )
    for finding in resolved:
        audit_record(
            actor=actor,
            action=AuditAction.RECONCILIATION_FINDING_RESOLVED,
            target=finding,
            data=_event_data(finding),
        )
    return ReconciliationResult(opened=opened, resolved=resolved, open=opened + still_open)


def reconcile(*, actor: Any = None) -> ReconciliationResult:
    """Replay the trail against the tables (one snapshot), then record what it found."""
    return reconciliation_record(actor=actor, discrepancies=discrepancies_find())
