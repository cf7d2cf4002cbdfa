"""The deployment gate: one answer to "may this exact build go into this environment now?".

The gate API, deployment start (in the same transaction, under row locks) and the change request
page all ask here, so they can never disagree. A denial names every failing rule with a stable
code and a sentence (DESIGN.md rules 1, 7, 8, 9, 11 and 13).
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from audit.services import audit_record, describe_actor
from registry.models import ModelVersion, PipelineStatus, RegisteredModel
from releases.models import (
    ChangeRequest,
    Decision,
    Deployment,
    DeploymentKind,
    DeploymentStatus,
    Environment,
    EnvironmentPolicy,
    FreezeWindow,
    GateDecision,
    GatePurpose,
    SignOffKind,
)
from releases.services.change_requests import EMERGENCY_VALIDITY
from releases.states import Kind, State

# The states in which a change request authorises a deployment.
USABLE_STATES = {Kind.NORMAL: State.APPROVED, Kind.EMERGENCY: State.AUTHORISED}
USED_STATES = frozenset({State.DEPLOYED, State.ROLLED_BACK, State.RETRO_REVIEW, State.CLOSED})
# States that can never become usable again; the gate looks past them when it picks a change.
DEAD_STATES = frozenset({State.CANCELLED, State.REJECTED, State.EXPIRED})


@dataclass(frozen=True)
class Reason:
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class SoakEvidence:
    """Rule 7: the first successful, not rolled back deployment of the same digest in the soak
    source, and the moment from which the rule holds (None while there is no such deployment)."""

    source: Environment
    days: int
    deployment: Deployment | None
    earliest_allowed_at: datetime | None
    holds: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.name,
            "days": self.days,
            "deployment": self.deployment.pk if self.deployment else None,
            "succeeded_at": self.deployment.succeeded_at if self.deployment else None,
            "earliest_allowed_at": self.earliest_allowed_at,
            "holds": self.holds,
        }


@dataclass
class GateAnswer:
    decided_at: datetime
    environment: Environment | None = None
    model: RegisteredModel | None = None
    model_version: ModelVersion | None = None
    change_request: ChangeRequest | None = None
    policy: EnvironmentPolicy | None = None
    soak: SoakEvidence | None = None
    reasons: list[Reason] = field(default_factory=list)
    warnings: list[Reason] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.reasons

    def deny(self, code: str, message: str) -> None:
        if all(reason.code != code for reason in self.reasons):
            self.reasons.append(Reason(code, message))

    def codes(self) -> list[str]:
        return [reason.code for reason in self.reasons]


def _when(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")


def _environment(value: Environment | str) -> Environment | None:
    if isinstance(value, Environment):
        return value
    return Environment.objects.filter(name=value).first()


def _standing_freezes(environment: Any, now: datetime):
    """Rule 8: the freezes of the environment in effect at `now`, the one ending first first."""
    return FreezeWindow.objects.filter(
        environment=environment,
        cancelled_at__isnull=True,
        starts_at__lte=now,
        ends_at__gt=now,
    ).order_by("ends_at")


def _environment_and_policy(
    value: Environment | str, now: datetime
) -> tuple[Environment | None, EnvironmentPolicy | None]:
    """The environment, the policy in force (its latest version, rule 13) and the freeze in
    effect, in one query; the gate needs neither the policy's approval teams nor more round
    trips."""
    lookup = (
        {"environment": value} if isinstance(value, Environment) else {"environment__name": value}
    )
    freeze = _standing_freezes(OuterRef("environment"), now)
    policy = (
        EnvironmentPolicy.objects.select_related("environment", "soak_source")
        .annotate(
            freeze_ends_at=Subquery(freeze.values("ends_at")[:1]),
            freeze_reason=Subquery(freeze.values("reason")[:1]),
        )
        .filter(**lookup)
        .order_by("-version")
        .first()
    )
    if policy is None:
        return _environment(value), None
    return (value if isinstance(value, Environment) else policy.environment), policy


def _model(value: RegisteredModel | str) -> RegisteredModel | None:
    if isinstance(value, RegisteredModel):
        return value
    return RegisteredModel.objects.filter(name=value).first()


def _change_requests():
    """Change requests with what the gate reads about them, and whether a deployment under each
    is in progress or has succeeded (rule 9), in the same query."""
    attempts = Deployment.objects.filter(change_request=OuterRef("pk"), kind=DeploymentKind.DEPLOY)
    return ChangeRequest.objects.select_related("model_version__model", "environment").annotate(
        attempt_in_progress=Exists(attempts.filter(status=DeploymentStatus.STARTED)),
        attempt_succeeded=Exists(attempts.filter(succeeded_at__isnull=False)),
    )


def _change_request(value: ChangeRequest | str | int, *, lock: bool) -> ChangeRequest | None:
    if isinstance(value, ChangeRequest):
        pk: Any = value.pk
    else:
        text = str(value).strip().upper().removeprefix("CR-")
        # isdigit() alone admits digits like "³" that int() refuses.
        if not (text.isascii() and text.isdigit()):
            return None
        pk = int(text)
    if lock:
        # Lock the row in a statement of its own; it serialises every start under one change. A
        # statement that waits for a lock still reads other tables as they were when it began,
        # so the attempts under the change are read by the next statement, once the lock is
        # held and the winner's deployment is visible (rule 9 under a race).
        list(ChangeRequest.objects.select_for_update().filter(pk=pk).values_list("pk"))
    return _change_requests().filter(pk=pk).first()


def _versions():
    """Model versions with their repository and the pipeline status of their commit, so the
    pipeline rule costs no query of its own."""
    return ModelVersion.objects.select_related("model", "repository").annotate(
        pipeline_status=Subquery(
            PipelineStatus.objects.filter(
                repository=OuterRef("repository"), commit_sha=OuterRef("commit_sha")
            ).values("status")[:1]
        )
    )


def _resolve_version(
    answer: GateAnswer, version: str, artifact_sha256: str, *, found: ModelVersion | None = None
) -> None:
    model = answer.model
    candidates = _versions().filter(model=model)
    if version:
        answer.model_version = found or candidates.filter(version=version).first()
        if answer.model_version is None:
            answer.deny("unknown_version", f"{model.name} has no registered version '{version}'.")
        elif artifact_sha256 and answer.model_version.artifact_sha256 != artifact_sha256:
            answer.deny(
                "digest_mismatch",
                f"{model.name} {version} was registered with artifact digest "
                f"{answer.model_version.artifact_sha256[:12]}…, not {artifact_sha256[:12]}….",
            )
    elif artifact_sha256:
        answer.model_version = (
            candidates.filter(artifact_sha256=artifact_sha256).order_by("-created_at").first()
        )
        if answer.model_version is None:
            answer.deny(
                "unknown_version",
                f"No registered version of {model.name} has artifact digest "
                f"{artifact_sha256[:12]}….",
            )
    else:
        answer.deny("unknown_version", "Name the version or the artifact digest to deploy.")


def _find_change_request(answer: GateAnswer, *, lock: bool) -> ChangeRequest | None:
    """The change under which this build would go: a usable one first, else the latest one that
    is not dead, so the answer can say what is missing."""
    candidates = (
        _change_requests()
        .filter(environment=answer.environment, model_version=answer.model_version)
        .exclude(state__in=DEAD_STATES | {State.DRAFT})
    )
    found = (
        candidates.filter(state__in=list(USABLE_STATES.values())).order_by("-pk").first()
        or candidates.order_by("-pk").first()
    )
    if found is None or not lock:
        return found
    return _change_request(found, lock=True)


def _check_change_request(answer: GateAnswer, cr: ChangeRequest) -> None:
    env, model, version, now = (
        answer.environment,
        answer.model,
        answer.model_version,
        answer.decided_at,
    )
    if env is not None and cr.environment_id != env.pk:
        answer.deny(
            "wrong_environment",
            f"{cr.number} is for {cr.environment.name}, not {env.name}.",
        )
    if model is not None and cr.model_version.model_id != model.pk:
        answer.deny(
            "wrong_model", f"{cr.number} is for {cr.model_version.model.name}, not {model.name}."
        )
    elif version is not None and cr.model_version_id != version.pk:
        if cr.model_version.artifact_sha256 != version.artifact_sha256:
            answer.deny(
                "digest_mismatch",
                f"{cr.number} authorises {cr.model_version} with artifact digest "
                f"{cr.model_version.artifact_sha256[:12]}…, not {version} "
                f"({version.artifact_sha256[:12]}…).",
            )
        else:
            answer.deny(
                "wrong_version", f"{cr.number} authorises {cr.model_version}, not {version}."
            )

    emergency = cr.kind == Kind.EMERGENCY
    if cr.state in USED_STATES:
        answer.deny(
            "change_already_used",
            f"{cr.number} has already been deployed; one change authorises one release.",
        )
    elif cr.state != USABLE_STATES[cr.kind]:
        if emergency:
            answer.deny(
                "emergency_not_authorised",
                f"Emergency change {cr.number} is {cr.get_state_display().lower()}; "
                "an emergency approver must authorise it first.",
            )
        else:
            answer.deny(
                "no_approved_change",
                f"{cr.number} is {cr.get_state_display().lower()}, not approved.",
            )

    if emergency:
        if answer.policy is not None and not answer.policy.emergency_allowed:
            answer.deny(
                "policy_emergency_not_allowed",
                f"The {cr.environment.name} policy (v{answer.policy.version}) does not allow "
                "emergency changes.",
            )
        authorised_at = (
            cr.sign_offs.filter(
                kind=SignOffKind.EMERGENCY_AUTHORISATION,
                decision=Decision.APPROVE,
                voided_at__isnull=True,
            )
            .order_by("-signed_at")
            .values_list("signed_at", flat=True)
            .first()
        )
        if (
            cr.state == State.AUTHORISED
            and authorised_at
            and now > authorised_at + EMERGENCY_VALIDITY
        ):
            answer.deny(
                "emergency_expired",
                f"Emergency change {cr.number} was authorised at {_when(authorised_at)} and was "
                f"valid for {EMERGENCY_VALIDITY.total_seconds() / 3600:.0f} hours.",
            )
    elif cr.window_start is None or cr.window_end is None:
        answer.deny("outside_window", f"{cr.number} has no planned window.")
    elif not cr.window_start <= now < cr.window_end:
        answer.deny(
            "outside_window",
            f"{cr.number} is valid from {_when(cr.window_start)} to {_when(cr.window_end)}; "
            f"it is now {_when(now)}.",
        )

    if cr.attempt_in_progress:
        answer.deny(
            "deployment_in_progress",
            f"A deployment under {cr.number} has started and not reported its result yet.",
        )
    # A failed attempt leaves the change usable (rule 9), even once it has been rolled back.
    if cr.attempt_succeeded:
        answer.deny(
            "change_already_used",
            f"{cr.number} has already been deployed; one change authorises one release.",
        )


def _check_freeze(answer: GateAnswer) -> None:
    if answer.policy is not None:
        ends_at, reason = answer.policy.freeze_ends_at, answer.policy.freeze_reason
    else:
        freeze = _standing_freezes(answer.environment, answer.decided_at).first()
        ends_at, reason = (freeze.ends_at, freeze.reason) if freeze else (None, "")
    if ends_at is not None:
        answer.deny(
            "freeze_in_effect",
            f"{answer.environment.name} is frozen until {_when(ends_at)}: {reason}.",
        )


def soak_evidence(
    *, policy: EnvironmentPolicy, model_version: ModelVersion, now: datetime | None = None
) -> SoakEvidence | None:
    """Rule 7 for one build: None when the policy asks for no soak."""
    if policy.soak_source_id is None or not policy.soak_days:
        return None
    now = now or timezone.now()
    first = (
        Deployment.objects.filter(
            environment_id=policy.soak_source_id,
            model_id=model_version.model_id,
            model_version__artifact_sha256=model_version.artifact_sha256,
            succeeded_at__isnull=False,
        )
        .exclude(status=DeploymentStatus.ROLLED_BACK)
        .order_by("succeeded_at", "pk")
        .first()
    )
    earliest = first.succeeded_at + timedelta(days=policy.soak_days) if first else None
    return SoakEvidence(
        source=policy.soak_source,
        days=policy.soak_days,
        deployment=first,
        earliest_allowed_at=earliest,
        holds=earliest is not None and earliest <= now,
    )


def _check_soak(answer: GateAnswer) -> None:
    evidence = soak_evidence(
        policy=answer.policy, model_version=answer.model_version, now=answer.decided_at
    )
    answer.soak = evidence
    if evidence is None or evidence.holds:
        return
    build = f"{answer.model_version} ({answer.model_version.artifact_sha256[:12]}…)"
    if evidence.deployment is None:
        message = (
            f"{build} has not run successfully in {evidence.source.name}; "
            f"{answer.environment.name} needs {evidence.days} days there first."
        )
    else:
        message = (
            f"{build} succeeded in {evidence.source.name} at "
            f"{_when(evidence.deployment.succeeded_at)}; the {evidence.days}-day soak holds "
            f"from {_when(evidence.earliest_allowed_at)}."
        )
    answer.deny("soak_not_met", message)


def _check_overdue_retrospectives(answer: GateAnswer) -> None:
    """Rule 11: an overdue retrospective blocks the next emergency change of the model and is
    flagged on every other answer."""
    overdue = ChangeRequest.objects.filter(
        kind=Kind.EMERGENCY,
        model_version__model=answer.model,
        state__in=[State.DEPLOYED, State.RETRO_REVIEW],
        retrospective_due_at__lt=answer.decided_at,
    ).order_by("retrospective_due_at")
    if answer.change_request is not None:
        overdue = overdue.exclude(pk=answer.change_request.pk)
    first = overdue.first()
    if first is None:
        return
    reason = Reason(
        "retrospective_overdue",
        f"The retrospective review of emergency change {first.number} for {answer.model.name} "
        f"was due at {_when(first.retrospective_due_at)}.",
    )
    if answer.change_request is not None and answer.change_request.kind == Kind.EMERGENCY:
        answer.deny(reason.code, reason.message)
    else:
        answer.warnings.append(reason)


def _check_pipeline(answer: GateAnswer) -> None:
    """A build from a repository linked to GitLab goes nowhere while its commit's pipeline is
    not green there (as last refreshed by `registry.tasks.refresh_pipeline_status`)."""
    version = answer.model_version
    repository = version.repository
    if not repository.gitlab_url or repository.gitlab_project_id is None:
        return
    status = version.pipeline_status
    if status == "success":
        return
    answer.deny(
        "pipeline_not_green",
        f"The GitLab pipeline of commit {version.commit_sha[:10]} is {status}."
        if status
        else f"No GitLab pipeline result has been recorded for commit {version.commit_sha[:10]}.",
    )


def gate_evaluate(
    *,
    environment: Environment | str,
    model: RegisteredModel | str,
    version: str = "",
    artifact_sha256: str = "",
    change_request: ChangeRequest | str | int | None = None,
    now: datetime | None = None,
    lock: bool = False,
) -> GateAnswer:
    """Judge one deployment without recording anything. With `lock`, the change request row is
    locked for the caller's transaction (deployment start)."""
    answer = GateAnswer(decided_at=now or timezone.now())
    answer.environment, answer.policy = _environment_and_policy(environment, answer.decided_at)
    if answer.environment is None:
        answer.deny("unknown_environment", f"There is no environment named '{environment}'.")
    else:
        if answer.policy is None:
            answer.deny(
                "policy_missing",
                f"{answer.environment.name} has no policy yet, so nothing may be deployed there.",
            )
    named = None
    if version and not isinstance(model, RegisteredModel):
        named = _versions().filter(model__name=model, version=version).first()
    answer.model = named.model if named else _model(model)
    if answer.model is None:
        answer.deny("unknown_model", f"There is no registered model named '{model}'.")
    else:
        _resolve_version(answer, version, artifact_sha256, found=named)

    if change_request not in (None, ""):
        answer.change_request = _change_request(change_request, lock=lock)
        if answer.change_request is None:
            answer.deny("unknown_change_request", f"There is no change request {change_request}.")
    elif answer.policy is not None and answer.model_version is not None:
        answer.change_request = _find_change_request(answer, lock=lock)

    cr = answer.change_request
    if cr is not None:
        _check_change_request(answer, cr)
    elif answer.policy is not None and answer.policy.needs_change_request:
        answer.deny(
            "no_approved_change",
            f"{answer.environment.name} needs an approved change request for this build, "
            "and there is none.",
        )

    emergency = cr is not None and cr.kind == Kind.EMERGENCY
    if answer.environment is not None and not emergency:
        _check_freeze(answer)
    if answer.policy is not None and answer.model_version is not None and not emergency:
        _check_soak(answer)
    if answer.model_version is not None:
        _check_pipeline(answer)
    if answer.model is not None:
        _check_overdue_retrospectives(answer)
    return answer


def gate_decision_record(
    *,
    actor: Any,
    answer: GateAnswer,
    purpose: str,
    question: dict[str, Any],
    deployment: Deployment | None = None,
) -> GateDecision:
    """Keep the answer with the policy version it applied (rule 13). Runs inside the caller's
    transaction, which writes the audit event."""
    decision = GateDecision(
        purpose=purpose,
        environment=answer.environment,
        model=answer.model,
        model_version=answer.model_version,
        change_request=answer.change_request,
        policy=answer.policy,
        deployment=deployment,
        allowed=answer.allowed,
        reasons=[reason.as_dict() for reason in answer.reasons],
        warnings=[reason.as_dict() for reason in answer.warnings],
        question=question,
        asked_by_name=describe_actor(actor)[2],
        decided_at=answer.decided_at,
    )
    # The related rows were read in this transaction a moment ago: validating each foreign key
    # again would cost five queries per gate check and prove nothing new.
    decision.full_clean(
        exclude=["environment", "model", "model_version", "change_request", "policy"]
    )
    decision.save()
    return decision


def decision_data(answer: GateAnswer, decision: GateDecision) -> dict[str, Any]:
    return {
        "gate_decision": decision.pk,
        "allowed": answer.allowed,
        "policy_version": answer.policy.version if answer.policy else None,
        "change_request": answer.change_request.number if answer.change_request else None,
        "reasons": decision.reasons,
        "warnings": decision.warnings,
    }


@transaction.atomic
def gate_check(
    *,
    actor: Any,
    environment: Environment | str,
    model: RegisteredModel | str,
    version: str = "",
    artifact_sha256: str = "",
    change_request: ChangeRequest | str | int | None = None,
    request: Any = None,
    now: datetime | None = None,
) -> GateAnswer:
    """The gate as CI asks it: judge, then record the decision and its audit event."""
    answer = gate_evaluate(
        environment=environment,
        model=model,
        version=version,
        artifact_sha256=artifact_sha256,
        change_request=change_request,
        now=now,
    )
    question = {
        "environment": getattr(environment, "name", environment),
        "model": getattr(model, "name", model),
        "version": version,
        "artifact_sha256": artifact_sha256,
        "change_request": getattr(change_request, "number", change_request) or "",
    }
    decision = gate_decision_record(
        actor=actor, answer=answer, purpose=GatePurpose.CHECK, question=question
    )
    audit_record(
        actor=actor,
        action="gate.checked",
        target=answer.model_version or answer.model,
        environment=answer.environment,
        data={**question, **decision_data(answer, decision)},
        request=request,
    )
    return answer
