"""Rule 17, the trail vouches for the tables: replay the audit trail into what every change
request, sign-off, deployment and policy version should hold, compare with the rows, and keep
what does not match as `ReconciliationFinding`s, which the gate reads (`record_inconsistent`).

The replay knows the events `releases.services` write and the fields each explains; memberships
and service accounts are replayed by `organisation.reconciliation`. One pass over the trail,
streamed in `seq` order, then one pass over each table: memory grows with the number of objects,
never with the number of events. On PostgreSQL both passes read one snapshot, so a change
committed meanwhile can never look like a row the trail does not explain.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction
from django.utils.dateparse import parse_datetime

from audit.actions import AuditAction
from audit.replay import Discrepancy, Expected, TrailEvent, compare, trail_events
from organisation.reconciliation import OrganisationReplay
from releases.models import (
    ChangeRequest,
    Decision,
    Deployment,
    DeploymentKind,
    DeploymentStatus,
    EnvironmentPolicy,
    SignOff,
    SignOffKind,
    StandardChangeTemplate,
)
from releases.services.change_requests import (
    EDITABLE_FIELDS,
    EMERGENCY_VALIDITY,
    template_terms,
)
from releases.services.policy import policy_snapshot
from releases.states import State

CHANGE_REQUEST = ChangeRequest._meta.label_lower
SIGN_OFF = SignOff._meta.label_lower
DEPLOYMENT = Deployment._meta.label_lower
POLICY = EnvironmentPolicy._meta.label_lower
TEMPLATE = StandardChangeTemplate._meta.label_lower
CONTENT_FIELDS = (*EDITABLE_FIELDS, "content_digest")
# Events that move a change request and say where to, in `state_after`.
MOVES = frozenset(
    {
        AuditAction.CHANGE_REQUEST_SUBMITTED,
        AuditAction.CHANGE_REQUEST_SIGNED,
        AuditAction.CHANGE_REQUEST_REOPENED,
        AuditAction.CHANGE_REQUEST_DEPLOYED,
        AuditAction.CHANGE_REQUEST_ROLLED_BACK,
    }
)
FINAL_MOVES = {
    AuditAction.CHANGE_REQUEST_CANCELLED: State.CANCELLED,
    AuditAction.CHANGE_REQUEST_EXPIRED: State.EXPIRED,
}
DEPLOYMENT_RESULTS = frozenset({AuditAction.DEPLOYMENT_SUCCEEDED, AuditAction.DEPLOYMENT_FAILED})
ACTIONS = frozenset(
    {
        AuditAction.CHANGE_REQUEST_CREATED,
        AuditAction.CHANGE_REQUEST_EDITED,
        *MOVES,
        *FINAL_MOVES,
        AuditAction.DEPLOYMENT_STARTED,
        *DEPLOYMENT_RESULTS,
        AuditAction.DEPLOYMENT_ROLLED_BACK,
        AuditAction.ENVIRONMENT_POLICY_CHANGED,
        AuditAction.SIGN_OFF_WITHDRAWN,
        AuditAction.STANDARD_TEMPLATE_CREATED,
        AuditAction.STANDARD_TEMPLATE_REVOKED,
        AuditAction.STANDARD_TEMPLATE_USED,
    }
)
CHUNK = 2000


def _actor(event: TrailEvent) -> str:
    return f"{event.actor_kind}:{event.actor_id}"


class ReleasesReplay:
    """Feed it the trail's events in order; `discrepancies()` then reads the rows."""

    actions = ACTIONS

    def __init__(self) -> None:
        self.change_requests: dict[str, Expected] = {}
        self.sign_offs: dict[str, Expected] = {}
        self.deployments: dict[str, Expected] = {}
        self.policies: dict[str, Expected] = {}
        self.templates: dict[str, Expected] = {}

    def apply(self, event: TrailEvent) -> None:
        if event.object_type == CHANGE_REQUEST:
            self._change_request(event)
        elif event.object_type == DEPLOYMENT:
            self._deployment(event)
        elif event.object_type == TEMPLATE:
            self._template(event)
        elif event.object_type == POLICY:
            after = dict(event.data["after"])
            after["approval_teams"] = sorted(after["approval_teams"])
            self.policies.setdefault(event.object_id, Expected()).set(
                event, environment=event.environment, **after
            )

    def _template(self, event: TrailEvent) -> None:
        """A template's terms are written once; its revocation is the only later change (a use
        is recorded on the template and changes no field of it)."""
        expected = self.templates.setdefault(event.object_id, Expected())
        if event.action == AuditAction.STANDARD_TEMPLATE_CREATED:
            terms = {name: value for name, value in event.data.items() if name != "id"}
            expected.set(event, **terms, revoked_at=None)
        elif event.action == AuditAction.STANDARD_TEMPLATE_REVOKED:
            expected.set(event, revoked_at=event.data["revoked_at"])

    def _change_request(self, event: TrailEvent) -> None:
        data, action = event.data, event.action
        expected = self.change_requests.setdefault(event.object_id, Expected())
        if action == AuditAction.CHANGE_REQUEST_CREATED:
            expected.set(
                event,
                kind=data["kind"],
                state=State.DRAFT,
                requester=event.actor_id,
                environment=event.environment,
                # Said since standard changes (issue 18); none before.
                standard_template=data.get("standard_template"),
                **{name: data[name] for name in CONTENT_FIELDS},
            )
        elif action == AuditAction.CHANGE_REQUEST_EDITED:
            after = data["after"]
            expected.set(
                event,
                state=data["state_after"],
                **{name: after[name] for name in CONTENT_FIELDS},
            )
            for sign_off in data["voided_sign_offs"]:
                self.sign_offs.setdefault(str(sign_off), Expected()).set(event, voided=True)
        elif action == AuditAction.SIGN_OFF_WITHDRAWN:
            expected.set(event, state=data["state_after"])
            self.sign_offs.setdefault(str(data["sign_off"]), Expected()).set(event, voided=True)
        elif action in FINAL_MOVES:
            expected.set(event, state=FINAL_MOVES[action])
        elif action in MOVES:
            expected.set(event, state=data["state_after"])
            if action == AuditAction.CHANGE_REQUEST_SUBMITTED and "risk" in data:
                risk = data["risk"]
                expected.set(
                    event,
                    risk_score=risk["score"],
                    risk_level=risk["level"],
                    risk_factors=risk["factors"],
                    risk_policy_version=risk["policy_version"],
                    template_diff=data.get("template_diff", {}),
                )
            if action == AuditAction.CHANGE_REQUEST_DEPLOYED:
                expected.set(event, retrospective_due_at=data["retrospective_due_at"])
            if action == AuditAction.CHANGE_REQUEST_SIGNED:
                self._sign_off(event, expected)

    def _sign_off(self, event: TrailEvent, change_request: Expected) -> None:
        data = event.data
        signed = {
            "change_request": event.object_id,
            "signer": event.actor_id,
            "kind": data["kind"],
            "team": data["team"],
            "decision": data["decision"],
            "content_digest": data["content_digest"],
            "policy_version": data["policy_version"],
            "voided": False,
            # Said only of a delegate's approval; every other signature was given in one's name.
            "on_behalf_of": str(data["on_behalf_of"]["id"]) if "on_behalf_of" in data else None,
        }
        # Since signatures may be confirmed at the identity provider, the event says how.
        if "reauthenticated_by" in data:
            signed["auth_time"] = data.get("auth_time")
            signed["acr"] = data.get("acr", "")
        # Events written before the signing time was recorded name only the moment of the event.
        if "signed_at" in data:
            signed["signed_at"] = data["signed_at"]
            if (
                data["kind"] == SignOffKind.EMERGENCY_AUTHORISATION
                and data["decision"] == Decision.APPROVE
            ):
                start = parse_datetime(data["signed_at"])
                change_request.set(event, window_start=start, window_end=start + EMERGENCY_VALIDITY)
        self.sign_offs.setdefault(str(data["sign_off"]), Expected()).set(event, **signed)

    def _deployment(self, event: TrailEvent) -> None:
        data, action = event.data, event.action
        expected = self.deployments.setdefault(event.object_id, Expected())
        if action == AuditAction.DEPLOYMENT_STARTED:
            expected.set(
                event,
                kind=DeploymentKind.DEPLOY,
                status=DeploymentStatus.STARTED,
                environment=event.environment,
                change_request=data["change_request"],
                started_by=_actor(event),
            )
            if "deployed_version" in data:
                expected.set(event, version=data["deployed_version"])
        elif action in DEPLOYMENT_RESULTS:
            expected.set(
                event,
                status=data["status"],
                version=data["version"],
                change_request=data["change_request"],
            )
        elif action == AuditAction.DEPLOYMENT_ROLLED_BACK:
            expected.set(
                event,
                kind=DeploymentKind.ROLLBACK,
                status=DeploymentStatus.SUCCEEDED,
                environment=event.environment,
                version=data["to_version"],
                started_by=_actor(event),
            )
            if "put_back_under" in data:
                expected.set(event, change_request=data["put_back_under"])
            self.deployments.setdefault(str(data["rolled_back"]), Expected()).set(
                event, status=DeploymentStatus.ROLLED_BACK
            )

    def discrepancies(self) -> list[Discrepancy]:
        return [
            *compare(
                object_type=CHANGE_REQUEST,
                expected=self.change_requests,
                rows=_change_request_rows(),
            ),
            *compare(object_type=SIGN_OFF, expected=self.sign_offs, rows=_sign_off_rows()),
            *compare(object_type=DEPLOYMENT, expected=self.deployments, rows=_deployment_rows()),
            *compare(object_type=POLICY, expected=self.policies, rows=_policy_rows()),
            *compare(object_type=TEMPLATE, expected=self.templates, rows=_template_rows()),
        ]


def _change_request_rows() -> Iterator[tuple[str, dict[str, Any]]]:
    rows = ChangeRequest.objects.select_related(
        "environment", "model_version__model", "risk_policy"
    ).iterator(chunk_size=CHUNK)
    for cr in rows:
        values = {name: getattr(cr, name) for name in CONTENT_FIELDS}
        values["model_version"] = str(cr.model_version)
        values.update(
            kind=cr.kind,
            state=cr.state,
            requester=str(cr.requester_id),
            environment=cr.environment.name,
            retrospective_due_at=cr.retrospective_due_at,
            standard_template=cr.standard_template_id,
            risk_score=cr.risk_score,
            risk_level=cr.risk_level,
            risk_factors=cr.risk_factors,
            risk_policy_version=cr.risk_policy.version if cr.risk_policy else None,
            template_diff=cr.template_diff,
        )
        yield str(cr.pk), values


def _sign_off_rows() -> Iterator[tuple[str, dict[str, Any]]]:
    rows = SignOff.objects.select_related("team", "policy").iterator(chunk_size=CHUNK)
    for sign_off in rows:
        yield (
            str(sign_off.pk),
            {
                "change_request": str(sign_off.change_request_id),
                "signer": str(sign_off.signer_id),
                "kind": sign_off.kind,
                "team": sign_off.team.slug if sign_off.team else None,
                "decision": sign_off.decision,
                "content_digest": sign_off.content_digest,
                "policy_version": sign_off.policy.version,
                "signed_at": sign_off.signed_at,
                "auth_time": sign_off.auth_time,
                "acr": sign_off.acr,
                "voided": sign_off.voided_at is not None,
                "on_behalf_of": (
                    str(sign_off.on_behalf_of_id) if sign_off.on_behalf_of_id else None
                ),
            },
        )


def _started_by(deployment: Deployment) -> str:
    if deployment.started_by_service_id is not None:
        return f"service:{deployment.started_by_service_id}"
    if deployment.started_by_user_id is not None:
        return f"user:{deployment.started_by_user_id}"
    return "system:"


def _deployment_rows() -> Iterator[tuple[str, dict[str, Any]]]:
    rows = Deployment.objects.select_related(
        "environment", "model_version", "change_request"
    ).iterator(chunk_size=CHUNK)
    for deployment in rows:
        yield (
            str(deployment.pk),
            {
                "kind": deployment.kind,
                "status": deployment.status,
                "environment": deployment.environment.name,
                "version": deployment.model_version.version,
                "change_request": (
                    deployment.change_request.number if deployment.change_request else None
                ),
                "started_by": _started_by(deployment),
            },
        )


def _policy_rows() -> Iterator[tuple[str, dict[str, Any]]]:
    rows = EnvironmentPolicy.objects.select_related("environment", "soak_source").prefetch_related(
        "approval_teams"
    )
    for policy in rows.iterator(chunk_size=CHUNK):
        values = policy_snapshot(policy)
        values["approval_teams"] = sorted(values["approval_teams"])
        values["environment"] = policy.environment.name
        yield str(policy.pk), values


def _template_rows() -> Iterator[tuple[str, dict[str, Any]]]:
    rows = StandardChangeTemplate.objects.select_related(
        "model", "base_version__repository"
    ).prefetch_related("environments")
    for template in rows.iterator(chunk_size=CHUNK):
        values = template_terms(template)
        del values["id"]
        values["revoked_at"] = template.revoked_at
        yield str(template.pk), values


@contextmanager
def _one_snapshot() -> Iterator[None]:
    """Read the trail and the tables as of one moment: on PostgreSQL a read-only repeatable read
    transaction (when not already inside one); on SQLite a transaction holds writers off."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def discrepancies_find() -> list[Discrepancy]:
    """Replay the trail and list every field of every row it does not explain."""
    replays = [ReleasesReplay(), OrganisationReplay()]
    actions = set().union(*(replay.actions for replay in replays))
    with _one_snapshot():
        for event in trail_events(actions=actions):
            for replay in replays:
                if event.action in replay.actions:
                    replay.apply(event)
        return [found for replay in replays for found in replay.discrepancies()]
