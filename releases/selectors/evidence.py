"""What an auditor takes away about one change request: its build, content digest, signatures,
gate decisions, deployments, rollback, incident and retrospective, the commits it released, and
every audit event concerning the change, its build and its deployments. Plain data, so the PDF,
the JSON and the verifier read the same facts."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from audit.models import AuditEvent
from releases.models import ChangeRequest, Deployment, DeploymentStatus, GateDecision, SignOff
from releases.selectors.commits import release_commits


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _name(user) -> str:
    return (user.get_full_name() or user.username) if user else ""


@dataclass(frozen=True)
class Evidence:
    change_request: ChangeRequest
    facts: dict[str, Any]
    events: QuerySet[AuditEvent]


def _build(change_request: ChangeRequest) -> dict[str, Any]:
    version = change_request.model_version
    return {
        "model": version.model.name,
        "version": version.version,
        "repository": version.repository.url,
        "commit_sha": version.commit_sha,
        "ref": version.ref,
        "build_id": version.build_id,
        "build_url": version.build_url,
        "artifact_uri": version.artifact_uri,
        "artifact_sha256": version.artifact_sha256,
        "env_lock_sha256": version.env_lock_sha256,
        "datasets": [
            {
                "name": dataset.name,
                "version": dataset.version,
                "uri": dataset.uri,
                "sha256": dataset.sha256,
            }
            for dataset in version.datasets.order_by("name", "version")
        ],
        "registered_at": _iso(version.created_at),
        "registered_by": version.created_by_name,
    }


def _sign_off(sign_off: SignOff) -> dict[str, Any]:
    return {
        "kind": sign_off.kind,
        "team": sign_off.team.name if sign_off.team else None,
        "signer": _name(sign_off.signer),
        "signer_username": sign_off.signer.username,
        # The absent approver whose delegate signed, else None.
        "on_behalf_of": _name(sign_off.on_behalf_of) or None,
        "on_behalf_of_username": (
            sign_off.on_behalf_of.username if sign_off.on_behalf_of else None
        ),
        "decision": sign_off.decision,
        "meaning": sign_off.meaning,
        "comment": sign_off.comment,
        "signed_at": _iso(sign_off.signed_at),
        "policy_version": sign_off.policy.version,
        "content_digest": sign_off.content_digest,
        "reauthenticated": sign_off.reauthenticated,
        "auth_time": _iso(sign_off.auth_time),
        "acr": sign_off.acr,
        "voided_at": _iso(sign_off.voided_at),
        "voided_reason": sign_off.voided_reason,
    }


def _decision(decision: GateDecision) -> dict[str, Any]:
    return {
        "purpose": decision.purpose,
        "allowed": decision.allowed,
        "reasons": decision.reasons,
        "warnings": decision.warnings,
        "decided_at": _iso(decision.decided_at),
        "policy_version": decision.policy.version if decision.policy else None,
        "asked_by": decision.asked_by_name,
    }


def _deployment(deployment: Deployment) -> dict[str, Any]:
    return {
        "id": deployment.pk,
        "kind": deployment.kind,
        "status": deployment.status,
        "version": deployment.model_version.version,
        "started_by": deployment.started_by_name,
        "started_at": _iso(deployment.started_at),
        "finished_at": _iso(deployment.finished_at),
        "succeeded_at": _iso(deployment.succeeded_at),
        "pipeline_url": deployment.pipeline_url,
        "rollback_of": deployment.rollback_of_id,
        "reason": deployment.reason,
        "detail": deployment.detail,
    }


def change_request_evidence(*, change_request: ChangeRequest) -> Evidence:
    """The facts of one change request as they stand, and its audit events (a queryset, in
    order, so a pack streams them)."""
    change = (
        ChangeRequest.objects.select_related(
            "model_version__model", "model_version__repository", "environment", "requester", "team"
        )
        .select_related("policy")
        .get(pk=change_request.pk)
    )
    sign_offs = change.sign_offs.select_related(
        "signer", "team", "policy", "on_behalf_of"
    ).order_by("signed_at", "pk")
    decisions = (
        GateDecision.objects.filter(change_request=change)
        .select_related("policy")
        .order_by("decided_at", "pk")
    )
    deployments = list(
        Deployment.objects.filter(Q(change_request=change) | Q(rollback_of__change_request=change))
        .select_related("model_version")
        .order_by("started_at", "pk")
    )
    first_success = next(
        (d for d in deployments if d.status == DeploymentStatus.SUCCEEDED and not d.rollback_of_id),
        None,
    )
    commits = release_commits(
        model_version=change.model_version,
        environment=change.environment,
        at=first_success.started_at if first_success else None,
    )
    facts = {
        "change_request": {
            "number": change.number,
            "kind": change.kind,
            "state": change.state,
            "title": change.title,
            "environment": change.environment.name,
            "requester": _name(change.requester),
            "requester_username": change.requester.username,
            "team": change.team.name,
            "justification": change.justification,
            "risk_impact": change.risk_impact,
            "test_evidence": change.test_evidence,
            "rollback_plan": change.rollback_plan,
            "window_start": _iso(change.window_start),
            "window_end": _iso(change.window_end),
            "incident_ref": change.incident_ref,
            "content_digest": change.content_digest,
            "policy_version": change.policy.version if change.policy else None,
            "created_at": _iso(change.created_at),
            "submitted_at": _iso(change.submitted_at),
            "retrospective_due_at": _iso(change.retrospective_due_at),
        },
        "build": _build(change),
        "sign_offs": [_sign_off(sign_off) for sign_off in sign_offs],
        "gate_decisions": [_decision(decision) for decision in decisions],
        "deployments": [_deployment(deployment) for deployment in deployments],
        "commits": {
            "known": commits.known,
            "note": commits.note,
            "from_version": commits.live.version if commits.live else None,
            "list": [
                {
                    "sha": commit.sha,
                    "subject": commit.subject,
                    "author": commit.author_name,
                    "author_email": commit.author_email,
                    "authored_at": _iso(commit.authored_at),
                }
                for commit in commits.commits
            ],
        },
    }
    concerning = Q(object_type="releases.changerequest", object_id=str(change.pk)) | Q(
        object_type="registry.modelversion", object_id=str(change.model_version_id)
    )
    if deployments:
        concerning |= Q(
            object_type="releases.deployment",
            object_id__in=[str(deployment.pk) for deployment in deployments],
        )
    events = AuditEvent.objects.filter(concerning).order_by("seq")
    return Evidence(change_request=change, facts=facts, events=events)
