"""Ledger against runtime for the environment page (issue 20): per model, what the ledger says
is live, the workloads the last cluster read found, the latest batch runs and the latest
health check, each with when it was last seen. A fixed number of queries whatever the number
of models: the reading, the observations, the outages, the runs (a window per model)."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import F, Window
from django.db.models.functions import RowNumber

from registry.models import RegisteredModel
from releases.models import (
    BatchRun,
    ClusterReading,
    Deployment,
    Environment,
    HealthCheck,
    ModelNotRunning,
    WorkloadObservation,
)

RUNS_SHOWN = 3


@dataclass
class ModelRuntime:
    model: RegisteredModel
    live: Deployment | None
    health: HealthCheck | None
    workloads: list[WorkloadObservation] = field(default_factory=list)
    runs: list[BatchRun] = field(default_factory=list)
    # The namespace was read and no workload serves what the ledger says is live.
    not_running: bool = False
    # When a read first found it so (the outage people were told of).
    not_running_since: datetime | None = None


@dataclass
class LedgerAndRuntime:
    observed: bool
    reading: ClusterReading | None
    models: list[ModelRuntime]


def models_running(observations: Iterable[WorkloadObservation]) -> set[int]:
    """The models a read found served: by a workload that serves, not one merely seen (a
    suspended CronJob serves nothing). A live model not among them is not running."""
    return {observation.model_id for observation in observations if observation.serving}


def ledger_and_runtime(*, environment: Environment, live: Sequence[Deployment]) -> LedgerAndRuntime:
    """`live` as `live_in_environment` gives it (with `latest_health` prefetched)."""
    reading = ClusterReading.objects.filter(environment=environment).first()
    read_at = reading.succeeded_at if reading else None
    observations = (
        list(
            WorkloadObservation.objects.filter(environment=environment, last_seen_at=read_at)
            .select_related("model")
            .order_by("workload", "kind", "served_sha256")
        )
        if read_at
        else []
    )
    rows = {
        deployment.model_id: ModelRuntime(
            model=deployment.model,
            live=deployment,
            health=deployment.latest_health[0] if deployment.latest_health else None,
        )
        for deployment in live
    }
    for observation in observations:
        row = rows.setdefault(
            observation.model_id, ModelRuntime(model=observation.model, live=None, health=None)
        )
        row.workloads.append(observation)
    runs = (
        BatchRun.objects.filter(environment=environment, model_id__in=list(rows))
        .annotate(
            recency=Window(
                RowNumber(),
                partition_by=[F("model_id")],
                order_by=[F("started_at").desc(), F("id").desc()],
            )
        )
        .filter(recency__lte=RUNS_SHOWN)
        .order_by("model_id", "recency")
    )
    for run in runs if rows else ():
        rows[run.model_id].runs.append(run)
    outages = (
        dict(ModelNotRunning.objects.filter(environment=environment).values_list("model", "since"))
        if read_at
        else {}
    )
    running = models_running(observations)
    for model_id, row in rows.items():
        row.not_running = bool(read_at and row.live and model_id not in running)
        row.not_running_since = outages.get(model_id) if row.not_running else None
    return LedgerAndRuntime(
        observed=bool(environment.cluster_namespace),
        reading=reading,
        models=sorted(rows.values(), key=lambda row: row.model.name),
    )
