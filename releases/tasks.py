"""Periodic and follow-up work for releases. Tasks load ids and call services or selectors;
the rules stay in the services."""

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from releases import notifications
from releases.cluster import ClusterUnreachable, workloads_read
from releases.health import probe
from releases.models import ChangeRequest, Deployment, Environment, UnauthorisedChange
from releases.selectors.live import live_in_environment
from releases.services.change_requests import (
    RETROSPECTIVE_WARNING,
    change_request_expire,
    change_request_retrospective_escalate,
)
from releases.services.deployments import (
    UNAUTHORISED_ESCALATION,
    health_check_record,
    unauthorised_change_escalate,
)
from releases.services.reconciliation import reconcile
from releases.services.runtime import cluster_reading_failed, workloads_observed_record
from releases.states import Kind, State

HEALTH_TIMEOUT_SECONDS = float(getattr(settings, "HEALTH_CHECK_TIMEOUT_SECONDS", 5))
logger = logging.getLogger(__name__)


@shared_task
def poll_health() -> int:
    """Fan out one probe per live deployment that has a health URL."""
    ids = [
        deployment.pk
        for environment in Environment.objects.all()
        for deployment in live_in_environment(environment=environment).exclude(health_url="")
    ]
    for deployment_id in ids:
        check_deployment_health.delay(deployment_id)
    return len(ids)


@shared_task(acks_late=True)
def check_deployment_health(deployment_id: int) -> bool | None:
    deployment = (
        Deployment.objects.select_related(
            "environment", "model", "model_version", "model__owner_team"
        )
        .filter(pk=deployment_id)
        .first()
    )
    if deployment is None or not deployment.health_url:
        return None
    result = probe(deployment.health_url, timeout=HEALTH_TIMEOUT_SECONDS)
    with transaction.atomic():
        was_ok = deployment.health_checks.values_list("ok", flat=True).first()
        check = health_check_record(
            deployment=deployment,
            ok=result.ok,
            latency_ms=result.latency_ms,
            status_code=result.status_code,
            reported_sha256=result.reported_sha256,
            detail=result.detail,
        )
        if not result.ok and was_ok is not False:
            notifications.deployment_unhealthy(
                deployment=deployment, since=check.checked_at, detail=result.detail
            )
    return result.ok


@shared_task
def observe_runtimes() -> int:
    """Fan out one read per environment mapped to a cluster namespace (issue 20)."""
    ids = list(Environment.objects.exclude(cluster_namespace="").values_list("pk", flat=True))
    for environment_id in ids:
        observe_runtime.delay(environment_id)
    return len(ids)


@shared_task(acks_late=True)
def observe_runtime(environment_id: int) -> dict:
    """Read the environment's namespace and compare it with the ledger; a read that fails is
    recorded and logged as an error, never taken for an empty namespace."""
    environment = (
        Environment.objects.filter(pk=environment_id).exclude(cluster_namespace="").first()
    )
    if environment is None:
        return {}
    try:
        workloads = workloads_read(environment)
    except ClusterUnreachable as unreachable:
        reading = cluster_reading_failed(environment=environment, error=str(unreachable))
        logger.error(
            "Cannot read namespace %s of %s: %s",
            environment.cluster_namespace,
            environment.name,
            reading.error,
        )
        return {"environment": environment.name, "error": reading.error}
    comparison = workloads_observed_record(environment=environment, workloads=workloads)
    for deployment in comparison.not_running:
        logger.warning(
            "%s is live in %s per the ledger but no workload serves it in namespace %s.",
            deployment.model.name,
            environment.name,
            environment.cluster_namespace,
        )
    return {
        "environment": environment.name,
        "workloads": len(comparison.observations),
        "flagged": [flag.pk for flag in comparison.flags],
        "not_running": [deployment.model.name for deployment in comparison.not_running],
        "unknown_models": comparison.reading.unknown_models,
    }


@shared_task
def expire_change_requests() -> int:
    """Approved or authorised changes whose window passed unused authorise nothing more."""
    now = timezone.now()
    stale = ChangeRequest.objects.filter(
        state__in=[State.APPROVED, State.AUTHORISED], window_end__lt=now
    ).values_list("pk", flat=True)
    expired = 0
    for change_request in ChangeRequest.objects.filter(pk__in=list(stale)):
        change_request_expire(actor=None, change_request=change_request)
        expired += 1
    return expired


@shared_task
def remind_stale_sign_offs() -> int:
    """Once a day, nudge the people who can sign a change that has waited more than a day."""
    now = timezone.now()
    waiting = ChangeRequest.objects.filter(
        state__in=[State.IN_REVIEW, State.IN_APPROVAL, State.AWAITING_AUTHORISATION],
        submitted_at__lt=now - timedelta(days=1),
    ).select_related("team", "environment", "requester", "model_version__model")
    count = 0
    for change_request in waiting:
        with transaction.atomic():
            notifications.sign_off_reminder(change_request=change_request, day=f"{now:%Y-%m-%d}")
        count += 1
    return count


@shared_task
def escalate_retrospectives(now_iso: str = "") -> int:
    """Emergency changes whose retrospective is near or past its deadline go to the change
    managers (the service decides, tells and records). Runs are idempotent: each stage is told
    once."""
    now = datetime.fromisoformat(now_iso) if now_iso else timezone.now()
    due = ChangeRequest.objects.filter(
        kind=Kind.EMERGENCY,
        state=State.RETRO_REVIEW,
        retrospective_due_at__lt=now + RETROSPECTIVE_WARNING,
    )
    escalated = 0
    for change_request in due:
        told = change_request_retrospective_escalate(
            actor=None, change_request=change_request, now=now
        )
        escalated += bool(told)
    return escalated


@shared_task
def escalate_unauthorised_changes(now_iso: str = "") -> int:
    """Unauthorised change flags left unreviewed for a day go out again, escalated (the service
    decides, tells and records; each flag once)."""
    now = datetime.fromisoformat(now_iso) if now_iso else timezone.now()
    waiting = UnauthorisedChange.objects.filter(
        reviewed_at__isnull=True, detected_at__lte=now - UNAUTHORISED_ESCALATION
    )
    return sum(unauthorised_change_escalate(actor=None, flag=flag, now=now) for flag in waiting)


@shared_task
def audit_reconcile() -> dict:
    """Rule 17, hourly: replay the trail against the tables and keep what does not match."""
    result = reconcile(actor=None)
    return {"open": len(result.open), "opened": len(result.opened)}
