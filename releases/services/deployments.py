"""Deployments: start (behind the gate), result, rollback, health checks and the unauthorised
change flag (DESIGN.md rules 9, 10 and 14). Every write here is one service function."""

from datetime import datetime, timedelta
from itertools import chain
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record, describe_actor
from portal.authentication import GRANT_SCOPE, is_service_account
from portal.exceptions import Conflict, NotFound, RuleDenied
from portal.models import Membership, Scope
from registry.artifacts import artifact_store_connected
from registry.models import ArtifactCheckPurpose, ModelVersion, RegisteredModel
from registry.services import model_version_artifact_check
from releases import notifications
from releases.models import (
    BatchRun,
    ChangeRequest,
    Deployment,
    DeploymentKind,
    DeploymentStatus,
    Environment,
    GatePurpose,
    HealthCheck,
    UnauthorisedChange,
    WorkloadObservation,
)
from releases.permissions import Action, refuse, token_reach_denial
from releases.selectors.gate import gate_question_resolve
from releases.selectors.rollback import END, rollback_target
from releases.services.change_requests import (
    change_request_mark_deployed,
    change_request_mark_rolled_back,
)
from releases.services.gate import (
    ROLLBACK,
    UNKNOWN_NAME_FIELDS,
    GateAnswer,
    decision_data,
    gate_decision_save,
    gate_decision_tally,
    gate_evaluate,
    gate_judge,
)
from releases.states import State

# The results CD may report, and the audit action each one records.
RESULT_ACTIONS = {
    DeploymentStatus.SUCCEEDED: AuditAction.DEPLOYMENT_SUCCEEDED,
    DeploymentStatus.FAILED: AuditAction.DEPLOYMENT_FAILED,
}


class GateDenied(RuleDenied):
    """The gate refused a deployment start; `reasons` lists every failing rule."""

    code = "gate_denied"

    def __init__(self, answer: GateAnswer):
        codes = ", ".join(answer.codes())
        super().__init__(
            f"The gate refused this deployment: {codes}. Each of `reasons` says why and what to "
            "do next; nothing was deployed."
        )
        self.answer = answer
        self.reasons = answer.reasons


def _started_by(actor: Any) -> dict[str, Any]:
    return {
        "started_by_user": None if actor is None or is_service_account(actor) else actor,
        "started_by_service": actor if is_service_account(actor) else None,
        "started_by_name": describe_actor(actor).name,
    }


def _require_scope(actor: Any) -> None:
    if is_service_account(actor) and not actor.has_scope(Scope.DEPLOYMENTS_WRITE):
        raise RuleDenied(
            f"This token lacks the '{Scope.DEPLOYMENTS_WRITE}' scope that deploying needs. "
            f"{GRANT_SCOPE}",
            code="missing_scope",
        )


def _may_deploy(
    actor: Any,
    model: RegisteredModel,
    environment: Environment,
    change_request: ChangeRequest | None,
) -> None:
    """People deploy their own team's models or their own changes; pipelines need the scope and
    deploy only what they reach (rule 15)."""
    _require_scope(actor)
    if actor is None:
        return
    if is_service_account(actor):
        _refuse_beyond_reach(actor, model, environment)
        return
    if change_request is not None and change_request.requester_id == actor.pk:
        return
    if Membership.objects.filter(user=actor, team_id=model.owner_team_id).exists():
        return
    raise RuleDenied(
        f"Only {model.owner_team.name}, the requester of the change or the pipeline may deploy "
        f"{model.name}: deploy it from {model.owner_team.name}'s pipeline, or ask its requester.",
        code="not_allowed_to_deploy",
    )


def _refuse_beyond_reach(actor: Any, model: RegisteredModel, environment: Environment) -> None:
    denied = token_reach_denial(actor, model=model, environment=environment)
    if denied is not None:
        raise denied


def _lock_history(model_id: int) -> None:
    """Serialise every write to a model's deployment history (start, result, rollback) on its
    registry row, taken first so the locks always come in one order: model, deployment, change
    request. Without it a rollback can miss a start committed meanwhile and replace an older
    attempt, or read the change request of the deployment it replaces as it was before a
    concurrent success moved it to deployed."""
    RegisteredModel.objects.select_for_update().filter(pk=model_id).values_list("pk").first()


def _lock_history_by_name(model: RegisteredModel | str) -> None:
    if isinstance(model, RegisteredModel):
        _lock_history(model.pk)
    elif "\x00" not in model:
        RegisteredModel.objects.select_for_update().filter(name=model).values_list("pk").first()


def _refuse_unknown_names(answer: GateAnswer) -> None:
    """A start that names something that does not exist is not a gate decision: there is
    nothing to decide about. 404 with the first unknown name's code, every one in the detail."""
    unknown = [reason for reason in answer.reasons if reason.code in UNKNOWN_NAME_FIELDS]
    if unknown:
        raise NotFound(" ".join(reason.message for reason in unknown), code=unknown[0].code)


def _artifact_recheck(
    *,
    actor: Any,
    model_version: ModelVersion | None,
    model: RegisteredModel | str,
    version: str,
    artifact_sha256: str,
    request: Any,
) -> None:
    """Issue 20: look at the build's artifact in its store again before the gate judges the
    start, so an object replaced since registration is refused (`artifact_changed`). The store
    is read before the deployment's transaction opens; an unconnected store is not asked."""
    if model_version is None:
        name = getattr(model, "name", model)
        if not name or "\x00" in name + version + artifact_sha256:
            return
        found = ModelVersion.objects.select_related("model").filter(model__name=name)
        if version:
            found = found.filter(version=version)
        elif artifact_sha256:
            found = found.filter(artifact_sha256=artifact_sha256)
        else:
            return
        model_version = found.order_by("-created_at", "-pk").first()
    if model_version is None or not artifact_store_connected(model_version.artifact_uri):
        return
    model_version_artifact_check(
        actor=actor,
        model_version=model_version,
        purpose=ArtifactCheckPurpose.DEPLOYMENT_START,
        request=request,
    )


def deployment_start(
    *,
    actor: Any,
    environment: Environment | str,
    model_version: ModelVersion | None = None,
    model: RegisteredModel | str = "",
    version: str = "",
    change_request: ChangeRequest | str | None = None,
    artifact_sha256: str = "",
    pipeline_url: str = "",
    health_url: str = "",
    request: Any = None,
    now: datetime | None = None,
) -> tuple[Deployment, bool]:
    """Record that CD starts a deployment, if the gate allows it now (rules 7 to 9 and 11).

    The build is named by `model_version`, or by `model` with `version` or `artifact_sha256`,
    exactly as the gate API is asked. The gate runs again inside this transaction with the
    model's history and the change request row locked, so two starts under one change cannot
    both pass. A refusal is itself a record (rule 13): it is committed with its audit event
    before `GateDenied` is raised. A retry with the same pipeline URL returns the deployment
    already recorded, with `created` False. `artifact_sha256`, when CD sends it, must be the
    version's digest (rule 1).
    """
    now = now or timezone.now()
    _require_scope(actor)
    _artifact_recheck(
        actor=actor,
        model_version=model_version,
        model=model,
        version=version,
        artifact_sha256=artifact_sha256,
        request=request,
    )
    if model_version is not None:
        model, version = model_version.model, model_version.version
    with transaction.atomic():
        _lock_history_by_name(model)
        answer = gate_evaluate(
            environment=environment,
            model=model,
            version=version,
            artifact_sha256=artifact_sha256,
            change_request=change_request,
            now=now,
            lock=True,
        )
        _refuse_unknown_names(answer)
        environment, model_version = answer.environment, answer.model_version
        _may_deploy(actor, answer.model, environment, answer.change_request)
        if pipeline_url:
            named = answer.change_request if change_request not in (None, "") else None
            existing = _same_pipeline(environment, model_version, named, pipeline_url)
            if existing is not None:
                return existing, False
        question = {**answer.question.asked, "pipeline_url": pipeline_url}
        deployment = None
        if answer.allowed:
            deployment = Deployment(
                environment=environment,
                model=answer.model,
                model_version=model_version,
                change_request=answer.change_request,
                kind=DeploymentKind.DEPLOY,
                status=DeploymentStatus.STARTED,
                started_at=now,
                pipeline_url=pipeline_url,
                health_url=health_url,
                **_started_by(actor),
            )
            deployment.full_clean(exclude=["environment", "model", "model_version"])
            deployment.save()
        decision = gate_decision_save(
            actor=actor,
            answer=answer,
            purpose=GatePurpose.DEPLOYMENT,
            question=question,
            deployment=deployment,
        )
        audit_record(
            actor=actor,
            action=AuditAction.DEPLOYMENT_STARTED if deployment else AuditAction.DEPLOYMENT_REFUSED,
            target=deployment or model_version,
            environment=environment,
            data={
                **question,
                **decision_data(answer, decision),
                "deployed_version": model_version.version,
            },
            request=request,
        )
        gate_decision_tally(decision)
    if deployment is None:
        raise GateDenied(answer)
    return deployment, True


def _same_pipeline(
    environment: Environment,
    model_version: ModelVersion,
    change_request: ChangeRequest | None,
    pipeline_url: str,
) -> Deployment | None:
    existing = Deployment.objects.filter(
        environment=environment, model=model_version.model, pipeline_url=pipeline_url
    ).first()
    if existing is None:
        return None
    same = existing.model_version_id == model_version.pk and (
        change_request is None or existing.change_request_id == change_request.pk
    )
    if not same:
        raise Conflict(
            f"Pipeline {pipeline_url} already reported a different deployment. Each pipeline "
            "run reports one deployment: report this one with its own pipeline URL.",
            code="pipeline_url_reused",
        )
    return existing


@transaction.atomic
def deployment_record_result(
    *,
    actor: Any,
    deployment: Deployment,
    status: str,
    detail: str = "",
    request: Any = None,
    now: datetime | None = None,
) -> Deployment:
    """CD reports how a deployment ended. Success makes it live and uses up its change (rule 9);
    a failure leaves the change usable for a retry inside its window. Reporting the same result
    twice changes nothing. Whoever started it reports, or a token of the starter's team that
    reaches the model and the environment (rule 15)."""
    now = now or timezone.now()
    if status not in RESULT_ACTIONS:
        raise ValidationError({"status": "A result is 'succeeded' or 'failed'."})
    _require_scope(actor)
    _lock_history(deployment.model_id)
    deployment = (
        Deployment.objects.select_for_update(of=("self",))
        .select_related("environment", "model", "change_request")
        .get(pk=deployment.pk)
    )
    refuse(actor, Action.REPORT_RESULT, deployment)
    if deployment.status != DeploymentStatus.STARTED:
        if deployment.status == status:
            return deployment
        raise Conflict(
            f"This deployment already ended as {deployment.get_status_display().lower()}; a "
            "result is reported once. To try again, start a new deployment.",
            code="deployment_finished",
        )
    deployment.status = status
    deployment.finished_at = now
    deployment.detail = detail
    if status == DeploymentStatus.SUCCEEDED:
        deployment.succeeded_at = now
    deployment.full_clean()
    deployment.save()
    if status == DeploymentStatus.SUCCEEDED and deployment.change_request is not None:
        change_request_mark_deployed(
            actor=actor,
            change_request=deployment.change_request,
            deployment=deployment,
            request=request,
        )
    if status == DeploymentStatus.FAILED:
        notifications.deployment_failed(deployment=deployment)
    audit_record(
        actor=actor,
        action=RESULT_ACTIONS[status],
        target=deployment,
        environment=deployment.environment,
        data={
            "deployment": deployment.pk,
            "model": deployment.model.name,
            "version": deployment.model_version.version,
            "change_request": (
                deployment.change_request.number if deployment.change_request else None
            ),
            "status": status,
            "detail": detail,
        },
        request=request,
    )
    return deployment


def _refuse_unless_live(environment: Environment, model: RegisteredModel, version: str) -> None:
    """A rollback that names what it rolls back goes ahead only while that is live: a retried
    rollback must not go back a second version."""
    live = (
        Deployment.objects.filter(environment=environment, model=model, succeeded_at__isnull=False)
        .select_related("model_version")
        .order_by("-succeeded_at", "-pk")
        .first()
    )
    if live is None or live.model_version.version != version:
        now_live = live.model_version.version if live else "nothing"
        raise Conflict(
            f"{model.name} {version} is not live in {environment.name} (live: {now_live}); "
            "nothing was rolled back. Read what is live now before rolling back again.",
            code="not_live",
        )


def rollback_plan(
    *, environment: Environment, model: RegisteredModel, lock: bool = False
) -> tuple[Deployment, Deployment]:
    """(the deployment a rollback replaces, the deployment whose version it puts back).

    The replaced one is the latest attempt. If it failed or never finished, the version to put
    back is what is live. If it succeeded, walk back through what was live before it and take
    the first other version whose latest time there was not itself rolled back.
    """
    history = Deployment.objects.filter(environment=environment, model=model).select_related(
        "model_version", "change_request"
    )
    if lock:
        history = history.select_for_update(of=("self",))
    # The latest recorded attempt, whatever clock its reporter keeps.
    replaced = history.order_by("-pk").first()
    if replaced is None or replaced.status == DeploymentStatus.ROLLED_BACK:
        raise Conflict(
            f"There is nothing to roll back for {model.name} in {environment.name}: no "
            "deployment of it is recorded there.",
            code="nothing_to_roll_back",
        )
    earlier = history.filter(succeeded_at__isnull=False).exclude(pk=replaced.pk)
    if replaced.succeeded_at is not None:
        earlier = earlier.filter(succeeded_at__lt=replaced.succeeded_at)
    walk = earlier.order_by("-succeeded_at", "-pk").values_list("pk", "model_version_id", "status")
    target_id = rollback_target(replaced, chain(walk.iterator(chunk_size=20), [END]))
    target = history.get(pk=target_id) if target_id is not None else None
    if target is None:
        raise Conflict(
            f"No earlier version of {model.name} was live in {environment.name}, so there is "
            "nothing to roll back to. Deploy the version you want under a change request "
            "instead.",
            code="no_previous_version",
        )
    return replaced, target


@transaction.atomic
def deployment_rollback(
    *,
    actor: Any,
    environment: Environment | str,
    model: RegisteredModel | str,
    reason: str,
    from_version: str = "",
    request: Any = None,
    now: datetime | None = None,
) -> Deployment:
    """Rule 10: put back the version that was live before the latest attempt, with a reason and
    no new approval. Recorded as a deployment of kind rollback that is live at once; the
    deployment it replaces is marked rolled back and keeps its `succeeded_at`, so the past stays
    answerable. The environment and model are resolved and judged by the gate's rules for a
    rollback, like any other deployment."""
    now = now or timezone.now()
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "A rollback needs a reason."})
    _lock_history_by_name(model)
    answer = gate_judge(
        gate_question_resolve(environment=environment, model=model, now=now), kind=ROLLBACK
    )
    for refusal in answer.reasons:
        if refusal.code in UNKNOWN_NAME_FIELDS:
            raise NotFound(refusal.message, code=refusal.code)
        raise RuleDenied(refusal.message, code=refusal.code)
    environment, model = answer.environment, answer.model
    _refuse_beyond_reach(actor, model, environment)
    replaced, target = rollback_plan(environment=environment, model=model, lock=True)
    refuse(actor, Action.ROLL_BACK, replaced)
    if from_version:
        _refuse_unless_live(environment, model, from_version)
    rollback = Deployment(
        environment=environment,
        model=model,
        model_version=target.model_version,
        # The version goes back under the change that approved it there; no new approval.
        change_request=target.change_request,
        kind=DeploymentKind.ROLLBACK,
        rollback_of=replaced,
        status=DeploymentStatus.SUCCEEDED,
        started_at=now,
        finished_at=now,
        succeeded_at=now,
        reason=reason,
        health_url=target.health_url,
        **_started_by(actor),
    )
    rollback.full_clean()
    rollback.save()
    replaced.status = DeploymentStatus.ROLLED_BACK
    replaced.finished_at = replaced.finished_at or now
    replaced.save(update_fields=["status", "finished_at"])
    undone = replaced.change_request
    if (
        replaced.kind == DeploymentKind.DEPLOY
        and replaced.succeeded_at is not None
        and undone is not None
        and undone.state in (State.DEPLOYED, State.RETRO_REVIEW)
    ):
        # The release this change authorised is undone; a failed attempt leaves its change as
        # it was, still usable inside its window (rule 9).
        change_request_mark_rolled_back(
            actor=actor,
            change_request=replaced.change_request,
            deployment=rollback,
            request=request,
        )
    audit_record(
        actor=actor,
        action=AuditAction.DEPLOYMENT_ROLLED_BACK,
        target=rollback,
        environment=environment,
        data={
            "deployment": rollback.pk,
            "model": model.name,
            "rolled_back": replaced.pk,
            "from_version": replaced.model_version.version,
            "to_version": target.model_version.version,
            "change_request": (replaced.change_request.number if replaced.change_request else None),
            "put_back_under": (target.change_request.number if target.change_request else None),
            "reason": reason,
        },
        request=request,
    )
    return rollback


@transaction.atomic
def health_check_record(
    *,
    deployment: Deployment,
    ok: bool,
    latency_ms: int | None = None,
    status_code: int | None = None,
    reported_sha256: str = "",
    detail: str = "",
    actor: Any = None,
    now: datetime | None = None,
) -> HealthCheck:
    """Keep one probe of a live deployment. Plain probes are observations and write no audit
    event; a digest the ledger did not put there (rule 14) raises a flag and is audited."""
    now = now or timezone.now()
    deployment = Deployment.objects.select_related("environment", "model", "model_version").get(
        pk=deployment.pk
    )
    check = HealthCheck(
        deployment=deployment,
        checked_at=now,
        ok=ok,
        latency_ms=latency_ms,
        status_code=status_code,
        reported_sha256=reported_sha256.lower(),
        detail=detail[:500],
    )
    check.full_clean()
    check.save()
    expected = deployment.model_version.artifact_sha256
    if not check.reported_sha256 or check.reported_sha256 == expected:
        return check
    unauthorised_change_raise(
        actor=actor,
        deployment=deployment,
        reported_sha256=check.reported_sha256,
        now=now,
        health_check=check,
    )
    return check


def unauthorised_change_raise(
    *,
    actor: Any,
    deployment: Deployment,
    reported_sha256: str,
    now: datetime,
    health_check: HealthCheck | None = None,
    batch_run: BatchRun | None = None,
    workload_observation: WorkloadObservation | None = None,
    observed_by: str = "",
    request: Any = None,
) -> UnauthorisedChange | None:
    """Rule 14: flag `deployment` as serving `reported_sha256`, which the ledger did not put
    there, and tell people; once per digest while a flag stays unreviewed. Runs inside the
    caller's transaction (a health probe, a batch run's attestation or a workload seen in the
    cluster, the witness; or, in `observed_by`, a source such as an MLflow alias moved outside
    Gatehouse)."""
    already = UnauthorisedChange.objects.filter(
        deployment=deployment, reported_sha256=reported_sha256, reviewed_at__isnull=True
    ).exists()
    if already:
        return None
    expected = deployment.model_version.artifact_sha256
    flag = UnauthorisedChange(
        deployment=deployment,
        health_check=health_check,
        batch_run=batch_run,
        workload_observation=workload_observation,
        observed_by=observed_by[:300],
        environment=deployment.environment,
        model=deployment.model,
        expected_sha256=expected,
        reported_sha256=reported_sha256,
        detected_at=now,
    )
    flag.full_clean()
    flag.save()
    notifications.unauthorised_change(flag=flag)
    witness = {"batch_run": batch_run.pk, "job_id": batch_run.job_id} if batch_run else {}
    if workload_observation is not None:
        witness = {
            "workload_observation": workload_observation.pk,
            "namespace": workload_observation.namespace,
            "kind": workload_observation.kind,
            "workload": workload_observation.workload,
        }
    if observed_by:
        witness["observed_by"] = flag.observed_by
    audit_record(
        actor=actor,
        action=AuditAction.DEPLOYMENT_UNAUTHORISED_CHANGE_DETECTED,
        target=deployment,
        environment=deployment.environment,
        data={
            "flag": flag.pk,
            "model": deployment.model.name,
            "expected_sha256": expected,
            "reported_sha256": reported_sha256,
            **witness,
        },
        request=request,
    )
    return flag


@transaction.atomic
def unauthorised_change_review(
    *,
    actor: Any,
    flag: UnauthorisedChange,
    note: str,
    request: Any = None,
    now: datetime | None = None,
) -> UnauthorisedChange:
    """Clear a rule 14 flag once an approver of the environment (or an administrator) has looked
    into it and says what they found."""
    now = now or timezone.now()
    flag = (
        UnauthorisedChange.objects.select_for_update(of=("self",))
        .select_related("environment", "model")
        .get(pk=flag.pk)
    )
    if flag.reviewed_at is not None:
        raise Conflict(
            "This flag has been reviewed already; its review is on the environment's page.",
            code="already_reviewed",
        )
    note = note.strip()
    if not note:
        raise ValidationError({"note": "Say what the review found."})
    refuse(actor, Action.REVIEW_UNAUTHORISED_CHANGE, flag)
    flag.reviewed_at = now
    flag.reviewed_by = actor
    flag.reviewed_by_name = describe_actor(actor).name
    flag.review_note = note
    flag.full_clean()
    flag.save()
    audit_record(
        actor=actor,
        action=AuditAction.DEPLOYMENT_UNAUTHORISED_CHANGE_REVIEWED,
        target=flag.deployment,
        environment=flag.environment,
        data={"flag": flag.pk, "model": flag.model.name, "note": note},
        request=request,
    )
    return flag


# An unauthorised change flag unreviewed this long is told again, escalated (rule 14).
UNAUTHORISED_ESCALATION = timedelta(hours=24)


@transaction.atomic
def unauthorised_change_escalate(
    *, actor: Any, flag: UnauthorisedChange, now: datetime | None = None
) -> bool:
    """Tell the owner team, the environment's approvers and the change managers again when a
    flag has stayed unreviewed for 24 hours; recorded once, when first told. Returns whether
    anyone was told now."""
    now = now or timezone.now()
    flag = (
        UnauthorisedChange.objects.select_for_update(of=("self",))
        .select_related("environment", "model", "deployment")
        .get(pk=flag.pk)
    )
    if flag.reviewed_at is not None or now - flag.detected_at < UNAUTHORISED_ESCALATION:
        return False
    told = notifications.unauthorised_change(flag=flag, escalated=True)
    if not told:
        return False
    audit_record(
        actor=actor,
        action=AuditAction.DEPLOYMENT_UNAUTHORISED_CHANGE_ESCALATED,
        target=flag.deployment,
        environment=flag.environment,
        data={
            "flag": flag.pk,
            "model": flag.model.name,
            "detected_at": flag.detected_at,
            "told": sorted({notification.recipient.get_username() for notification in told}),
        },
    )
    return True
