"""Batch runs attest what they run (issue 20, rule 14): a scoring job on Hadoop/YARN, Airflow or
cron tells the portal at its start which artifact digest it is about to score with, and hears
whether that digest is the one live in the environment, so it can refuse to run otherwise."""

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record, describe_actor
from portal.authentication import GRANT_SCOPE, is_service_account
from portal.exceptions import Conflict, NotFound, RuleDenied
from portal.models import Membership, Scope
from registry.models import ModelVersion, RegisteredModel
from releases.models import BatchRun, Environment
from releases.permissions import token_reach_denial
from releases.selectors.live import live_deployment
from releases.services.deployments import unauthorised_change_raise

# Why a run is refused, stable for job scripts.
DIGEST_NOT_LIVE = "digest_not_live"
NOTHING_LIVE = "nothing_live"


def _may_attest(actor: Any, model: RegisteredModel, environment: Environment) -> None:
    """A token with `runs:write` within its reach (rule 15); a person of the model's owner
    team. A scope of its own, not `deployments:write`: the token sits on a shared cluster with
    every scoring job, and must not be able to start, finish or roll back deployments."""
    if is_service_account(actor):
        if not actor.has_scope(Scope.RUNS_WRITE):
            raise RuleDenied(
                f"This token lacks the '{Scope.RUNS_WRITE}' scope that attesting runs needs. "
                f"{GRANT_SCOPE}",
                code="missing_scope",
            )
        denied = token_reach_denial(actor, model=model, environment=environment)
        if denied is not None:
            raise denied
        return
    if actor is None or Membership.objects.filter(user=actor, team_id=model.owner_team_id).exists():
        return
    raise RuleDenied(
        f"Only {model.owner_team.name} or its pipelines attest runs of {model.name}: attest "
        "from its pipeline, with its token.",
        code="not_allowed_to_attest",
    )


def _named(environment: str, model: str) -> tuple[Environment, RegisteredModel]:
    """The environment and the model the job names; a name that names nothing is 404."""
    found_environment = Environment.objects.filter(name=environment.replace("\x00", "")).first()
    found_model = (
        RegisteredModel.objects.select_related("owner_team")
        .filter(name=model.replace("\x00", ""))
        .first()
    )
    if found_environment is None:
        raise NotFound(
            f"No environment is named '{environment}'. Names are exact (dev, test, prod …): "
            "GET /api/v1/environments/ lists them.",
            code="unknown_environment",
        )
    if found_model is None:
        raise NotFound(
            f"No model is registered as '{model}'. Check the name on the Registry page "
            "(GET /api/v1/models/ lists them).",
            code="unknown_model",
        )
    return found_environment, found_model


@transaction.atomic
def batch_run_attest(
    *,
    actor: Any,
    environment: str,
    model: str,
    artifact_sha256: str,
    job_id: str,
    host: str,
    request: Any = None,
    now: datetime | None = None,
) -> tuple[BatchRun, bool]:
    """Record that job `job_id` on `host` starts scoring with `artifact_sha256`, and say whether
    that is the digest live in `environment`. A digest that is not live is refused
    (`digest_not_live`) and flags the live deployment as changed without authorisation; with
    nothing live the run is refused (`nothing_live`). The same attestation again returns the
    recorded run (`created` False); another digest under the same job and host is a conflict."""
    now = now or timezone.now()
    environment_row, model_row = _named(environment, model)
    _may_attest(actor, model_row, environment_row)
    artifact_sha256 = artifact_sha256.lower()
    # One run record per model and environment at a time: a retry finds the first.
    RegisteredModel.objects.select_for_update().filter(pk=model_row.pk).values_list("pk").first()
    existing = BatchRun.objects.filter(
        environment=environment_row, model=model_row, job_id=job_id, host=host
    ).first()
    if existing is not None:
        if existing.artifact_sha256 != artifact_sha256:
            raise Conflict(
                f"Job {job_id} on {host} attested digest {existing.artifact_sha256[:12]}… "
                "already; a job runs one artifact. Attest this run under a new job id.",
                code="run_conflict",
            )
        return existing, False

    live = live_deployment(environment=environment_row, model=model_row, at=now)
    live_sha256 = live.model_version.artifact_sha256 if live else ""
    code = "" if live_sha256 == artifact_sha256 else (DIGEST_NOT_LIVE if live else NOTHING_LIVE)
    who = describe_actor(actor)
    run = BatchRun(
        environment=environment_row,
        model=model_row,
        artifact_sha256=artifact_sha256,
        job_id=job_id,
        host=host,
        model_version=ModelVersion.objects.filter(
            model=model_row, artifact_sha256=artifact_sha256
        ).first(),
        live_deployment=live,
        allowed=not code,
        code=code,
        started_at=now,
        reported_by_user=None if actor is None or is_service_account(actor) else actor,
        reported_by_service=actor if is_service_account(actor) else None,
        reported_by_name=who.name,
    )
    run.full_clean()
    run.save()
    audit_record(
        actor=actor,
        action=AuditAction.BATCH_RUN_ATTESTED,
        target=run,
        environment=environment_row,
        data={
            "model": model_row.name,
            "artifact_sha256": artifact_sha256,
            "job_id": job_id,
            "host": host,
            "allowed": run.allowed,
            "code": code,
            "live_sha256": live_sha256,
            "live_deployment": live.pk if live else None,
        },
        request=request,
    )
    if code == DIGEST_NOT_LIVE:
        unauthorised_change_raise(
            actor=actor,
            deployment=live,
            reported_sha256=artifact_sha256,
            now=now,
            batch_run=run,
            request=request,
        )
    return run, True


def batch_run_answer(run: BatchRun) -> dict[str, Any]:
    """The run as the job reads it: allowed or not, why, and what is live instead."""
    live = run.live_deployment
    reasons = {
        DIGEST_NOT_LIVE: (
            f"{run.artifact_sha256[:12]}… is not the build live in {run.environment.name}; "
            "the run is recorded and flagged as an unauthorised change."
        ),
        NOTHING_LIVE: f"Nothing of {run.model.name} is live in {run.environment.name}.",
    }
    return {
        "id": run.pk,
        "allowed": run.allowed,
        "code": run.code or None,
        "detail": reasons.get(run.code, "This is the build live there."),
        "environment": run.environment.name,
        "model": run.model.name,
        "artifact_sha256": run.artifact_sha256,
        "job_id": run.job_id,
        "host": run.host,
        "live_version": live.model_version.version if live else None,
        "live_sha256": live.model_version.artifact_sha256 if live else None,
        "started_at": run.started_at,
    }
