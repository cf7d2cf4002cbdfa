"""Environments, their versioned policies and freeze windows (rules 8 and 13). A policy is never
edited: every change writes the next version, audited with what it was before and after."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record, describe_actor
from portal.exceptions import Conflict
from portal.models import ServiceAccount, Team
from releases.kubernetes import namespaces_parse
from releases.models import ChangeRequest, Environment, EnvironmentPolicy, FreezeWindow
from releases.selectors.policy import environment_policy_current
from releases.services.change_requests import change_requests_reopen_for_policy, signatures_missing
from releases.states import Kind, State

Actor = AbstractBaseUser | ServiceAccount | None

POLICY_FIELDS = (
    "needs_change_request",
    "needs_peer_review",
    "soak_days",
    "soak_requires_healthy",
    "emergency_allowed",
    "requires_validation",
    "requires_verified_artifact",
    "exclude_commit_authors",
    "retrospective_hours",
    "retrospective_excludes_authoriser",
    "conflicts_block",
    "required_acr",
    "standard_changes_allowed",
)


def policy_snapshot(policy: EnvironmentPolicy | None) -> dict | None:
    """The policy as plain data, for the audit trail's before/after."""
    if policy is None:
        return None
    data = {name: getattr(policy, name) for name in POLICY_FIELDS}
    data["version"] = policy.version
    data["approval_teams"] = [team.slug for team in policy.approval_teams.all()]
    data["soak_source"] = policy.soak_source.name if policy.soak_source else None
    data["low_risk_approval_teams"] = sorted(
        team.slug for team in policy.low_risk_approval_teams.all()
    )
    data["high_risk_team"] = policy.high_risk_team.slug if policy.high_risk_team else None
    return data


def production_policy_shortfalls(
    *,
    approval_teams: list[Team],
    needs_change_request: bool,
    needs_peer_review: bool,
    soak_source: Environment | None,
    soak_days: int,
    low_risk_approval_teams: list[Team] = (),
) -> list[str]:
    """What these rules lack against the floor under a production policy (rule 13's guardrail),
    one sentence each; empty when they hold. A bank's production must keep its four eyes, its
    approval teams and its soak, whoever holds the admin, low-risk changes included (rule 18)."""
    floor = settings.GATEHOUSE_MIN_PROD_TEAMS
    shortfalls = []
    if not needs_change_request:
        shortfalls.append("it must require a change request")
    if not needs_peer_review:
        shortfalls.append("it must require a peer review")
    if len(approval_teams) < floor:
        shortfalls.append(
            f"it names {len(approval_teams)} approval team(s) where production needs at least "
            f"{floor}"
        )
    if soak_source is None or soak_days < 1:
        shortfalls.append("it must require a soak of at least one day in another environment")
    if low_risk_approval_teams and len(low_risk_approval_teams) < floor:
        shortfalls.append(
            f"it lets a low-risk change through with {len(low_risk_approval_teams)} approval "
            f"team(s) where production needs at least {floor}"
        )
    return shortfalls


def _refuse_weak_production_policy(environment: Environment, shortfalls: list[str]) -> None:
    if shortfalls:
        raise Conflict(
            f"{environment.name} is a production environment: {'; '.join(shortfalls)}. "
            "Nothing was saved: keep the policy at or above that floor.",
            code="production_policy_too_weak",
        )


def _current_shortfalls(environment: Environment) -> list[str]:
    current = environment_policy_current(environment=environment)
    if current is None:
        return []
    return production_policy_shortfalls(
        approval_teams=list(current.approval_teams.all()),
        needs_change_request=current.needs_change_request,
        needs_peer_review=current.needs_peer_review,
        soak_source=current.soak_source,
        soak_days=current.soak_days,
        low_risk_approval_teams=list(current.low_risk_approval_teams.all()),
    )


def _governed_namespaces(text: str, *, environment_id: int | None) -> str:
    """The namespaces as stored (comma-separated, once each). A namespace is governed by one
    environment only, or the cluster's admission could not say whose ledger to ask."""
    try:
        names = namespaces_parse(text)
    except ValueError as invalid:
        raise ValidationError({"admission_namespaces": [str(invalid)]}) from invalid
    for other in Environment.objects.exclude(admission_namespaces="").exclude(pk=environment_id):
        taken = set(names) & set(namespaces_parse(other.admission_namespaces))
        if taken:
            raise Conflict(
                f"Namespace {', '.join(sorted(taken))} is governed by {other.name} already: "
                f"one environment governs a namespace. Remove it from {other.name} first, or "
                "leave it out here.",
                code="namespace_governed_elsewhere",
            )
    return ", ".join(names)


CLUSTER_FIELDS = ("cluster_api_server", "cluster_namespace", "cluster_token_variable")


def _cluster(values: dict[str, str]) -> dict[str, str]:
    unknown = set(values) - set(CLUSTER_FIELDS)
    if unknown:
        raise ValueError(f"Not a cluster setting: {', '.join(sorted(unknown))}")
    cleaned = {name: (values.get(name) or "").strip() for name in CLUSTER_FIELDS}
    if not cleaned["cluster_namespace"] and any(cleaned.values()):
        raise ValidationError({"cluster_namespace": ["Name the namespace to observe."]})
    return cleaned


def cluster_settings_of(environment: Environment) -> dict[str, str]:
    return {field: getattr(environment, field) for field in CLUSTER_FIELDS}


@transaction.atomic
def environment_create(
    *,
    actor: Actor,
    name: str,
    rank: int,
    description: str = "",
    is_production: bool = False,
    admission_namespaces: str = "",
    cluster: dict[str, str] | None = None,
    request=None,
) -> Environment:
    """`cluster`: where its workloads are observed (`CLUSTER_FIELDS`); none by default."""
    environment = Environment(
        name=name,
        rank=rank,
        description=description,
        is_production=is_production,
        admission_namespaces=_governed_namespaces(admission_namespaces, environment_id=None),
        **_cluster(cluster or {}),
    )
    environment.full_clean()
    environment.save()
    audit_record(
        actor=actor,
        action=AuditAction.ENVIRONMENT_CREATED,
        target=environment,
        environment=environment,
        data={
            "name": name,
            "rank": rank,
            "description": description,
            "is_production": is_production,
            "admission_namespaces": environment.admission_namespaces,
            **cluster_settings_of(environment),
        },
        request=request,
    )
    return environment


@transaction.atomic
def environment_update(
    *,
    actor: Actor,
    environment: Environment,
    rank: int,
    description: str,
    is_production: bool | None = None,
    admission_namespaces: str | None = None,
    cluster: dict[str, str] | None = None,
    request=None,
) -> Environment:
    """Marking an environment as production is refused while its policy is under the floor:
    the mark would otherwise promise a guardrail the rules in force do not keep. Which
    namespaces it governs, and where its workloads are observed, are audited like the rest:
    they decide what the cluster lets run and what is compared with the ledger."""
    environment = Environment.objects.select_for_update().get(pk=environment.pk)
    if is_production is None:
        is_production = environment.is_production
    if admission_namespaces is None:
        admission_namespaces = environment.admission_namespaces
    before = {
        "rank": environment.rank,
        "description": environment.description,
        "is_production": environment.is_production,
        "admission_namespaces": environment.admission_namespaces,
        **cluster_settings_of(environment),
    }
    if is_production and not environment.is_production:
        _refuse_weak_production_policy(environment, _current_shortfalls(environment))
    environment.rank, environment.description = rank, description
    environment.is_production = is_production
    environment.admission_namespaces = _governed_namespaces(
        admission_namespaces, environment_id=environment.pk
    )
    kept = cluster_settings_of(environment) if cluster is None else cluster
    for name, value in _cluster(kept).items():
        setattr(environment, name, value)
    environment.full_clean()
    environment.save()
    audit_record(
        actor=actor,
        action=AuditAction.ENVIRONMENT_UPDATED,
        target=environment,
        environment=environment,
        data={
            "before": before,
            "after": {
                "rank": rank,
                "description": description,
                "is_production": is_production,
                "admission_namespaces": environment.admission_namespaces,
                **cluster_settings_of(environment),
            },
        },
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
    requires_validation: bool = False,
    requires_verified_artifact: bool = False,
    exclude_commit_authors: bool = False,
    retrospective_hours: int = 72,
    retrospective_excludes_authoriser: bool = True,
    conflicts_block: bool = False,
    required_acr: str = "",
    standard_changes_allowed: bool = False,
    low_risk_approval_teams: Iterable[Team] = (),
    high_risk_team: Team | None = None,
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
        raise Conflict(
            "An environment cannot be its own soak source: choose the environment a build "
            "soaks in before it comes here (test, for production).",
            code="soak_source_self",
        )
    approval_teams = list(approval_teams)
    low_risk_approval_teams = list(low_risk_approval_teams)
    strays = [team.name for team in low_risk_approval_teams if team not in approval_teams]
    if strays:
        raise Conflict(
            f"The low-risk approval teams are some of the approval teams; {', '.join(strays)} "
            "is not one.",
            code="low_risk_team_not_approval_team",
        )
    if environment.is_production:
        _refuse_weak_production_policy(
            environment,
            production_policy_shortfalls(
                approval_teams=approval_teams,
                needs_change_request=needs_change_request,
                needs_peer_review=needs_peer_review,
                soak_source=soak_source,
                soak_days=soak_days,
                low_risk_approval_teams=low_risk_approval_teams,
            ),
        )
    policy = EnvironmentPolicy(
        environment=environment,
        version=current.version + 1 if current else 1,
        needs_change_request=needs_change_request,
        needs_peer_review=needs_peer_review,
        soak_source=soak_source,
        soak_days=soak_days,
        soak_requires_healthy=soak_requires_healthy,
        emergency_allowed=emergency_allowed,
        requires_validation=requires_validation,
        requires_verified_artifact=requires_verified_artifact,
        exclude_commit_authors=exclude_commit_authors,
        retrospective_hours=retrospective_hours,
        retrospective_excludes_authoriser=retrospective_excludes_authoriser,
        conflicts_block=conflicts_block,
        required_acr=required_acr.strip(),
        standard_changes_allowed=standard_changes_allowed,
        high_risk_team=high_risk_team,
        created_by_name=describe_actor(actor).name,
    )
    policy.full_clean()
    policy.save()
    policy.approval_teams.set(approval_teams)
    policy.low_risk_approval_teams.set(low_risk_approval_teams)
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


@dataclass(frozen=True)
class PolicyEffect:
    """What saving a policy version would do to one open change request, in words."""

    change_request: ChangeRequest
    effects: list[str]


@dataclass(frozen=True)
class PolicyPreview:
    """Shown before a policy version is saved: why it would be refused, and which pending and
    approved changes it would affect and how."""

    refusals: list[str] = field(default_factory=list)
    affected: list[PolicyEffect] = field(default_factory=list)


def _soak_words(source: Environment | None, days: int) -> str:
    return f"{days} day(s) live in {source.name}" if source is not None and days else "no soak"


def _team_names(teams: Iterable[Team]) -> str:
    return ", ".join(team.name for team in teams)


def environment_policy_preview(
    *,
    environment: Environment,
    approval_teams: Iterable[Team],
    needs_change_request: bool = True,
    needs_peer_review: bool = True,
    soak_source: Environment | None = None,
    soak_days: int = 0,
    emergency_allowed: bool = True,
) -> PolicyPreview:
    """What `environment_policy_change` would refuse or do with these rules, without doing it:
    approved changes it would send back (as `change_requests_reopen_for_policy` will), pending
    ones whose awaited teams change, and changes whose soak or emergency route changes."""
    approval_teams = list(approval_teams)
    refusals = []
    if soak_source is not None and soak_source.pk == environment.pk:
        refusals.append("An environment cannot be its own soak source.")
    if environment.is_production:
        shortfalls = production_policy_shortfalls(
            approval_teams=approval_teams,
            needs_change_request=needs_change_request,
            needs_peer_review=needs_peer_review,
            soak_source=soak_source,
            soak_days=soak_days,
        )
        if shortfalls:
            refusals.append(
                f"{environment.name} is a production environment: " + "; ".join(shortfalls) + "."
            )
    current = environment_policy_current(environment=environment)
    current_teams = list(current.approval_teams.all()) if current else []
    new_pks = {team.pk for team in approval_teams}
    soak_before = _soak_words(current.soak_source, current.soak_days) if current else "no soak"
    soak_after = _soak_words(soak_source, soak_days)
    open_changes = (
        ChangeRequest.objects.filter(
            environment=environment,
            state__in=[
                State.IN_REVIEW,
                State.IN_APPROVAL,
                State.APPROVED,
                State.AWAITING_AUTHORISATION,
                State.AUTHORISED,
            ],
        )
        .select_related("model_version__model")
        .prefetch_related("sign_offs")
        .order_by("pk")
    )
    affected = []
    for change_request in open_changes:
        effects = []
        if change_request.kind == Kind.EMERGENCY:
            if not emergency_allowed and (current is None or current.emergency_allowed):
                effects.append("emergency changes are no longer allowed: the gate will refuse it")
        else:
            missing, peer_missing = signatures_missing(
                change_request.sign_offs.all(),
                approval_teams=approval_teams,
                needs_peer_review=needs_peer_review,
            )
            if change_request.state == State.APPROVED and (missing or peer_missing):
                back_to = State.IN_REVIEW if peer_missing else State.IN_APPROVAL
                waits = (["a peer review"] if peer_missing else []) + [t.name for t in missing]
                effects.append(
                    f"goes back to {back_to.label.lower()}, waiting for {', '.join(waits)}"
                )
            elif change_request.state != State.APPROVED:
                awaited, _ = signatures_missing(
                    change_request.sign_offs.all(),
                    approval_teams=current_teams,
                    needs_peer_review=False,
                )
                added = [team for team in missing if team not in current_teams]
                dropped = [team for team in awaited if team.pk not in new_pks]
                if peer_missing and change_request.state == State.IN_APPROVAL:
                    effects.append("will also need a peer review")
                if added:
                    effects.append(f"will also wait for approval from {_team_names(added)}")
                if dropped:
                    effects.append(f"no longer waits for approval from {_team_names(dropped)}")
            if soak_after != soak_before:
                effects.append(f"the gate will ask for {soak_after} (was {soak_before})")
        if effects:
            affected.append(PolicyEffect(change_request=change_request, effects=effects))
    return PolicyPreview(refusals=refusals, affected=affected)


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
        raise Conflict(
            "A freeze must end after it starts: choose an end after the start.",
            code="freeze_order",
        )
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
        raise Conflict(
            "This freeze is already cancelled; there is nothing more to do.",
            code="freeze_cancelled",
        )
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
