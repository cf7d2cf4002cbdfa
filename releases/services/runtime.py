"""Runtime observation (issue 20, rule 14): what an environment's cluster namespace serves,
compared with what the ledger says is live there. A workload serving a digest the ledger did
not put there raises the unauthorised change flag, once per observation; a live deployment
with no workload is not running, and its owners and approvers are told once per outage; a
namespace that cannot be read is reported as such (Platform Operations are told once per
outage) and leaves the last observations standing, never read as "all fine"."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from registry.models import RegisteredModel
from releases import notifications
from releases.cluster import ObservedWorkload
from releases.models import (
    ClusterReading,
    Deployment,
    DigestSource,
    Environment,
    ModelNotRunning,
    UnauthorisedChange,
    WorkloadObservation,
)
from releases.selectors.live import live_per_model
from releases.selectors.runtime import models_running
from releases.services.deployments import unauthorised_change_raise


@dataclass
class RuntimeComparison:
    """One successful read: the observations it made, the flags it raised, and the live
    deployments it found no workload for."""

    reading: ClusterReading
    observations: list[WorkloadObservation] = field(default_factory=list)
    flags: list[UnauthorisedChange] = field(default_factory=list)
    not_running: list[Deployment] = field(default_factory=list)


def _reading_locked(environment: Environment, now: datetime) -> ClusterReading:
    """The environment's reading row, locked: two reads of one namespace record one after
    the other."""
    reading = ClusterReading.objects.select_for_update().filter(environment=environment).first()
    if reading is None:
        reading = ClusterReading(environment=environment, attempted_at=now)
    reading.namespace = environment.cluster_namespace
    reading.attempted_at = now
    return reading


def _served(workload: ObservedWorkload, expected: str) -> list[tuple[str, str]]:
    """The digests a workload serves: its annotation's, else per pod the live digest when one
    of its containers runs it, or else its first container's (the model's by convention)."""
    if workload.annotation_sha256:
        return [(workload.annotation_sha256, DigestSource.ANNOTATION)]
    served = [
        expected if expected in images else images[0] for images in workload.pod_images if images
    ]
    if not served:
        return [("", DigestSource.UNKNOWN)]
    return [(digest, DigestSource.IMAGE) for digest in dict.fromkeys(served)]


def _observation_keep(
    *,
    environment: Environment,
    model: RegisteredModel,
    workload: ObservedWorkload,
    served_sha256: str,
    source: str,
    live: Deployment | None,
    now: datetime,
) -> tuple[WorkloadObservation, bool]:
    observation = WorkloadObservation.objects.filter(
        environment=environment,
        namespace=environment.cluster_namespace,
        kind=workload.kind,
        workload=workload.name,
        model=model,
        served_sha256=served_sha256,
    ).first()
    created = observation is None
    if created:
        observation = WorkloadObservation(
            environment=environment,
            model=model,
            namespace=environment.cluster_namespace,
            kind=workload.kind,
            workload=workload.name,
            served_sha256=served_sha256,
            first_seen_at=now,
        )
    observation.source = source
    observation.ready_replicas = workload.ready_replicas
    observation.serving = workload.serving
    observation.live_deployment = live
    observation.matches_ledger = live is not None and (
        served_sha256 == live.model_version.artifact_sha256
    )
    observation.last_seen_at = now
    observation.full_clean()
    observation.save()
    return observation, created


def _outage_data(*, deployment: Deployment, namespace: str, **data) -> dict:
    return {
        "model": deployment.model.name,
        "namespace": namespace,
        "live_deployment": deployment.pk,
        "live_sha256": deployment.model_version.artifact_sha256,
        **data,
    }


def _not_running_record(
    *,
    environment: Environment,
    live: dict[int, Deployment],
    running: set[int],
    namespace: str,
    now: datetime,
) -> list[Deployment]:
    """The live deployments no workload serves. An outage is recorded and told when a read
    first finds it, and again when a read finds the model served; the polls in between say
    nothing."""
    outages = {
        outage.model_id: outage
        for outage in ModelNotRunning.objects.filter(environment=environment).select_related(
            "environment", "model", "deployment__model_version", "deployment__model__owner_team"
        )
    }
    for model_id, outage in outages.items():
        if model_id in running and model_id in live:
            outage.delete()
            notifications.model_running_again(outage=outage, namespace=namespace, now=now)
            audit_record(
                actor=None,
                action=AuditAction.RUNTIME_RUNNING_AGAIN,
                target=live[model_id],
                environment=environment,
                data=_outage_data(
                    deployment=live[model_id], namespace=namespace, not_running_since=outage.since
                ),
            )
    not_running = [d for model_id, d in live.items() if model_id not in running]
    for deployment in not_running:
        if deployment.model_id in outages:
            continue
        outage = ModelNotRunning(
            environment=environment, model=deployment.model, deployment=deployment, since=now
        )
        outage.full_clean()
        outage.save()
        notifications.model_not_running(outage=outage, namespace=namespace)
        audit_record(
            actor=None,
            action=AuditAction.RUNTIME_NOT_RUNNING,
            target=deployment,
            environment=environment,
            data=_outage_data(deployment=deployment, namespace=namespace, since=now),
        )
    return not_running


def _cluster_data(*, reading: ClusterReading, **data) -> dict:
    return {
        "namespace": reading.namespace,
        "api_server": reading.environment.cluster_api_server,
        **data,
    }


@transaction.atomic
def workloads_observed_record(
    *,
    environment: Environment,
    workloads: Sequence[ObservedWorkload],
    now: datetime | None = None,
) -> RuntimeComparison:
    """Record one successful read of the environment's namespace and compare it with the
    ledger. The system acts: nobody asked. A workload first seen is audited; a digest the
    ledger did not put there flags the live deployment once per observation, not at every
    poll, however often it is seen and whether or not the flag was reviewed since."""
    now = now or timezone.now()
    reading = _reading_locked(environment, now)
    live = {deployment.model_id: deployment for deployment in live_per_model(environment)}
    models = {
        model.name: model
        for model in RegisteredModel.objects.filter(name__in={w.model for w in workloads})
    }
    comparison = RuntimeComparison(reading=reading)
    unknown = []
    for workload in workloads:
        model = models.get(workload.model)
        if model is None:
            unknown.append(
                {"kind": workload.kind, "workload": workload.name, "model": workload.model}
            )
            continue
        deployment = live.get(model.pk)
        expected = deployment.model_version.artifact_sha256 if deployment else ""
        for served_sha256, source in _served(workload, expected):
            observation, created = _observation_keep(
                environment=environment,
                model=model,
                workload=workload,
                served_sha256=served_sha256,
                source=source,
                live=deployment,
                now=now,
            )
            comparison.observations.append(observation)
            if created:
                audit_record(
                    actor=None,
                    action=AuditAction.WORKLOAD_OBSERVED,
                    target=observation,
                    environment=environment,
                    data={
                        "model": model.name,
                        "namespace": observation.namespace,
                        "kind": observation.kind,
                        "workload": observation.workload,
                        "served_sha256": served_sha256,
                        "source": source,
                        "live_deployment": deployment.pk if deployment else None,
                        "live_sha256": expected,
                        "matches_ledger": observation.matches_ledger,
                    },
                )
            foreign = deployment is not None and served_sha256 and served_sha256 != expected
            if foreign and not observation.flags.filter(deployment=deployment).exists():
                flag = unauthorised_change_raise(
                    actor=None,
                    deployment=deployment,
                    reported_sha256=served_sha256,
                    now=now,
                    workload_observation=observation,
                )
                if flag is not None:
                    comparison.flags.append(flag)
    comparison.not_running = _not_running_record(
        environment=environment,
        live=live,
        running=models_running(comparison.observations),
        namespace=reading.namespace,
        now=now,
    )
    last_error, failing_since = reading.error, reading.failing_since
    reading.succeeded_at, reading.error, reading.failing_since = now, "", None
    reading.unknown_models = unknown
    reading.full_clean()
    reading.save()
    if last_error:
        notifications.cluster_readable_again(reading=reading, failing_since=failing_since)
        audit_record(
            actor=None,
            action=AuditAction.CLUSTER_READABLE_AGAIN,
            target=reading,
            environment=environment,
            data=_cluster_data(reading=reading, failing_since=failing_since, last_error=last_error),
        )
    return comparison


@transaction.atomic
def cluster_reading_failed(
    *, environment: Environment, error: str, now: datetime | None = None
) -> ClusterReading:
    """The namespace could not be read: say so, and since when. The observations of the last
    good read stay as they were. The first failure after a good read is audited (and so on the
    trail an auditor reads, and Platform Operations are told); later ones only move
    `attempted_at`."""
    now = now or timezone.now()
    reading = _reading_locked(environment, now)
    first_failure = not reading.error
    reading.error = error[:500]
    reading.failing_since = reading.failing_since or now
    reading.full_clean()
    reading.save()
    if first_failure:
        notifications.cluster_unreachable(reading=reading)
        audit_record(
            actor=None,
            action=AuditAction.CLUSTER_UNREACHABLE,
            target=reading,
            environment=environment,
            data=_cluster_data(
                reading=reading, error=reading.error, last_read_at=reading.succeeded_at
            ),
        )
    return reading
