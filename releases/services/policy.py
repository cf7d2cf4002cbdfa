"""Environments, their versioned policies and freeze windows (rules 8 and 13). A policy is never
edited: every change writes the next version, audited with what it was before and after."""

from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record, describe_actor
from portal.exceptions import Conflict
from portal.models import ServiceAccount, Team
from releases.models import Environment, EnvironmentPolicy, FreezeWindow
from releases.services.change_requests import change_requests_reopen_for_policy

Actor = AbstractBaseUser | ServiceAccount | None

POLICY_FIELDS = (
    "needs_change_request",
    "needs_peer_review",
    "soak_days",
    "soak_requires_healthy",
    "emergency_allowed",
    "exclude_commit_authors",
    "retrospective_hours",
    "retrospective_excludes_authoriser",
)


def policy_snapshot(policy: EnvironmentPolicy | None) -> dict | None:
    """The policy as plain data, for the audit trail's before/after."""
    if policy is None:
        return None
    data = {name: getattr(policy, name) for name in POLICY_FIELDS}
    data["version"] = policy.version
    data["approval_teams"] = [team.slug for team in policy.approval_teams.all()]
    data["soak_source"] = policy.soak_source.name if policy.soak_source else None
    return data


@transaction.atomic
def environment_create(
    *, actor: Actor, name: str, rank: int, description: str = "", request=None
) -> Environment:
    environment = Environment(name=name, rank=rank, description=description)
    environment.full_clean()
    environment.save()
    audit_record(
        actor=actor,
        action=AuditAction.ENVIRONMENT_CREATED,
        target=environment,
        environment=environment,
        data={"name": name, "rank": rank, "description": description},
        request=request,
    )
    return environment


@transaction.atomic
def environment_update(
    *, actor: Actor, environment: Environment, rank: int, description: str, request=None
) -> Environment:
    environment = Environment.objects.select_for_update().get(pk=environment.pk)
    before = {"rank": environment.rank, "description": environment.description}
    environment.rank, environment.description = rank, description
    environment.full_clean()
    environment.save()
    audit_record(
        actor=actor,
        action=AuditAction.ENVIRONMENT_UPDATED,
        target=environment,
        environment=environment,
        data={"before": before, "after": {"rank": rank, "description": description}},
        request=request,
    )
    return environment


@transaction.atomic
def environment_policy_change(
    *,
    actor: Actor,
    environment: Environment,
    approval_teams: Iterable[Team],
    needs_change_request: bool = True,
    needs_peer_review: bool = True,
    soak_source: Environment | None = None,
    soak_days: int = 0,
    soak_requires_healthy: bool = False,
    emergency_allowed: bool = True,
    exclude_commit_authors: bool = False,
    retrospective_hours: int = 72,
    retrospective_excludes_authoriser: bool = True,
    request=None,
) -> EnvironmentPolicy:
    """Write the next policy version of `environment`. The environment row is locked so two
    administrators saving at once get consecutive versions, not a unique-constraint error."""
    environment = Environment.objects.select_for_update().get(pk=environment.pk)
    current = (
        EnvironmentPolicy.objects.filter(environment=environment)
        .select_related("soak_source")
        .prefetch_related("approval_teams")
        .order_by("-version")
        .first()
    )
    if soak_source is not None and soak_source.pk == environment.pk:
        raise Conflict("An environment cannot be its own soak source.", code="soak_source_self")
    policy = EnvironmentPolicy(
        environment=environment,
        version=current.version + 1 if current else 1,
        needs_change_request=needs_change_request,
        needs_peer_review=needs_peer_review,
        soak_source=soak_source,
        soak_days=soak_days,
        soak_requires_healthy=soak_requires_healthy,
        emergency_allowed=emergency_allowed,
        exclude_commit_authors=exclude_commit_authors,
        retrospective_hours=retrospective_hours,
        retrospective_excludes_authoriser=retrospective_excludes_authoriser,
        created_by_name=describe_actor(actor).name,
    )
    policy.full_clean()
    policy.save()
    policy.approval_teams.set(list(approval_teams))
    audit_record(
        actor=actor,
        action=AuditAction.ENVIRONMENT_POLICY_CHANGED,
        target=policy,
        environment=environment,
        data={"before": policy_snapshot(current), "after": policy_snapshot(policy)},
        request=request,
    )
    change_requests_reopen_for_policy(actor=actor, policy=policy, request=request)
    return policy


def _freeze_data(freeze: FreezeWindow) -> dict:
    return {
        "starts_at": freeze.starts_at,
        "ends_at": freeze.ends_at,
        "reason": freeze.reason,
    }


@transaction.atomic
def freeze_window_create(
    *,
    actor: Actor,
    environment: Environment,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    request=None,
) -> FreezeWindow:
    """A period in which normal changes to `environment` are refused (rule 8)."""
    if ends_at <= starts_at:
        raise Conflict("A freeze must end after it starts.", code="freeze_order")
    freeze = FreezeWindow(
        environment=environment,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
        created_by_name=describe_actor(actor).name,
    )
    freeze.full_clean()
    freeze.save()
    audit_record(
        actor=actor,
        action=AuditAction.FREEZE_WINDOW_CREATED,
        target=freeze,
        environment=environment,
        data=_freeze_data(freeze),
        request=request,
    )
    return freeze


@transaction.atomic
def freeze_window_cancel(
    *, actor: Actor, freeze_window: FreezeWindow, reason: str, request=None
) -> FreezeWindow:
    """Lift a freeze. The row stays, marked cancelled, so past refusals remain explainable."""
    freeze = FreezeWindow.objects.select_for_update().get(pk=freeze_window.pk)
    if freeze.cancelled_at is not None:
        raise Conflict("This freeze is already cancelled.", code="freeze_cancelled")
    freeze.cancelled_at = timezone.now()
    freeze.cancelled_by_name = describe_actor(actor).name
    freeze.cancel_reason = reason
    freeze.full_clean()
    freeze.save()
    audit_record(
        actor=actor,
        action=AuditAction.FREEZE_WINDOW_CANCELLED,
        target=freeze,
        environment=freeze.environment,
        data={**_freeze_data(freeze), "cancel_reason": reason},
        request=request,
    )
    return freeze
