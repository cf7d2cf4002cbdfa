"""What is live, and what was live at any past moment.

What was live in (environment, model) at T is the latest deployment there with `succeeded_at`
at or before T. A deployment later rolled back keeps its `succeeded_at`, so it still answers for
the moments before its rollback. Which deployments answer is one statement probing the
`deployment_live` index (once per model for a whole environment); the related rows the pages
show come with them (joins) or in a fixed number of prefetches.
"""

from collections.abc import Sequence
from datetime import datetime

from django.db.models import Count, Exists, Func, OuterRef, Prefetch, QuerySet, Subquery

from registry.models import ModelVersion, RegisteredModel
from releases.models import (
    ChangeRequest,
    Decision,
    Deployment,
    Environment,
    HealthCheck,
    SignOff,
    SignOffKind,
    UnauthorisedChange,
)
from releases.states import Kind, State


def _succeeded_by(at: datetime | None) -> dict:
    lookups = {"succeeded_at__isnull": False}
    if at is not None:
        lookups["succeeded_at__lte"] = at
    return lookups


def with_provenance(queryset: QuerySet[Deployment]) -> QuerySet[Deployment]:
    """Who put each deployment there, through which change, signed by whom, and its health."""
    signers = SignOff.objects.filter(voided_at__isnull=True, decision=Decision.APPROVE)
    return queryset.select_related(
        "environment",
        "model",
        "model_version__repository",
        "change_request__requester",
        "started_by_user",
        "started_by_service",
        "rollback_of__model_version",
    ).prefetch_related(
        Prefetch(
            "change_request__sign_offs",
            queryset=signers.select_related("signer", "team").order_by("signed_at"),
            to_attr="approvals",
        ),
        Prefetch(
            "health_checks",
            queryset=HealthCheck.objects.order_by("-checked_at")[:1],
            to_attr="latest_health",
        ),
        Prefetch(
            "unauthorised_changes",
            queryset=UnauthorisedChange.objects.filter(reviewed_at__isnull=True),
            to_attr="open_flags",
        ),
    )


def _live_per_model(*, environment: Environment, at: datetime | None) -> QuerySet:
    """The id of the deployment live in the environment (at `at`) for each registered model:
    one probe of the `deployment_live` index per model, so the cost follows the number of
    models, not the length of the history."""
    latest = (
        Deployment.objects.filter(
            environment=environment, model=OuterRef("pk"), **_succeeded_by(at)
        )
        .order_by("-succeeded_at", "-pk")
        .values("pk")[:1]
    )
    return (
        RegisteredModel.objects.annotate(live=Subquery(latest))
        .filter(live__isnull=False)
        .values("live")
    )


def live_in_environment(
    *, environment: Environment, at: datetime | None = None
) -> QuerySet[Deployment]:
    """One row per model that is (or was at `at`) live in the environment, by model name.

    The ids are read first: inside one statement with the provenance joins, PostgreSQL hashed
    the whole deployment history to find 200 rows by primary key (docs/benchmarks.md)."""
    ids = list(_live_per_model(environment=environment, at=at))
    queryset = Deployment.objects.filter(pk__in=[row["live"] for row in ids]).order_by(
        "model__name"
    )
    return with_provenance(queryset)


def live_per_model(environment: Environment) -> list[Deployment]:
    """What is live now in the environment, one deployment per model with its build, for the
    comparisons with what the runtime reports: two queries."""
    ids = [row["live"] for row in _live_per_model(environment=environment, at=None)]
    return list(
        Deployment.objects.filter(pk__in=ids).select_related(
            "environment", "model", "model_version"
        )
    )


def live_in_environments(environments: Sequence[Environment]) -> dict[int, list[Deployment]]:
    """What is live now in each of `environments`, by environment id, each by model name: two
    queries whatever their number (one index probe per model and environment, then the rows)."""
    probes = {
        f"live_{environment.pk}": Subquery(
            Deployment.objects.filter(
                environment=environment.pk, model=OuterRef("pk"), **_succeeded_by(None)
            )
            .order_by("-succeeded_at", "-pk")
            .values("pk")[:1]
        )
        for environment in environments
    }
    live: dict[int, list[Deployment]] = {environment.pk: [] for environment in environments}
    if not probes:
        return live
    rows = RegisteredModel.objects.annotate(**probes).order_by().values_list(*probes)
    ids = {pk for row in rows for pk in row if pk is not None}
    deployments = (
        Deployment.objects.filter(pk__in=ids)
        .select_related("model", "model_version", "change_request")
        .order_by("model__name")
    )
    for deployment in deployments:
        live[deployment.environment_id].append(deployment)
    return live


def live_deployment(
    *, environment: Environment, model: RegisteredModel, at: datetime | None = None
) -> Deployment | None:
    """The one deployment that is (or was at `at`) live in (environment, model)."""
    return (
        with_provenance(
            Deployment.objects.filter(environment=environment, model=model, **_succeeded_by(at))
        )
        .order_by("-succeeded_at", "-pk")
        .first()
    )


def signers_of(deployment: Deployment) -> list[SignOff]:
    """The approving sign-offs behind a deployment (a rollback carries the change that first
    approved its version there)."""
    change = deployment.change_request
    if change is None:
        return []
    approvals = getattr(change, "approvals", None)
    if approvals is None:
        approvals = list(change.sign_offs.filter(voided_at__isnull=True, decision=Decision.APPROVE))
    return approvals


def environments_overview(*, now: datetime) -> QuerySet[Environment]:
    """Every environment with how many models run there, open unauthorised change flags and
    overdue emergency retrospectives, in one query."""
    return Environment.objects.annotate(
        # Counted over the registered models (one index probe each), not over the history.
        live_models=Subquery(
            RegisteredModel.objects.filter(
                Exists(
                    Deployment.objects.filter(
                        environment=OuterRef(OuterRef("pk")),
                        model=OuterRef("pk"),
                        succeeded_at__isnull=False,
                    )
                )
            )
            .order_by()
            .annotate(n=Func("pk", function="COUNT"))
            .values("n")
        ),
        open_flags=Subquery(
            UnauthorisedChange.objects.filter(environment=OuterRef("pk"), reviewed_at__isnull=True)
            .values("environment")
            .annotate(n=Count("pk"))
            .values("n")[:1]
        ),
        overdue=Subquery(
            ChangeRequest.objects.filter(
                environment=OuterRef("pk"),
                kind=Kind.EMERGENCY,
                state__in=[State.DEPLOYED, State.RETRO_REVIEW],
                retrospective_due_at__lt=now,
            )
            .values("environment")
            .annotate(n=Count("pk"))
            .values("n")[:1]
        ),
    ).order_by("rank", "name")


def emergency_changes(*, environment: Environment) -> QuerySet[ChangeRequest]:
    """Rule 11: the environment's emergency changes still open, with their retrospective
    deadlines and who has signed the retrospective so far."""
    return (
        ChangeRequest.objects.filter(
            environment=environment,
            kind=Kind.EMERGENCY,
            state__in=[State.AUTHORISED, State.DEPLOYED, State.RETRO_REVIEW],
        )
        .select_related("model_version__model", "requester")
        .prefetch_related(
            Prefetch(
                "sign_offs",
                queryset=SignOff.objects.filter(
                    voided_at__isnull=True, kind=SignOffKind.RETROSPECTIVE
                ).select_related("signer", "team"),
                to_attr="retrospectives",
            )
        )
        .order_by("retrospective_due_at", "-pk")
    )


def unauthorised_changes_open(*, environment: Environment) -> QuerySet[UnauthorisedChange]:
    """Rule 14: flags nobody has reviewed yet."""
    return (
        UnauthorisedChange.objects.filter(environment=environment, reviewed_at__isnull=True)
        .select_related("model", "deployment__model_version")
        .order_by("-detected_at")
    )


def live_environments_of_versions(versions: Sequence[ModelVersion]) -> dict[int, list[str]]:
    """The registry's "where is each version live" hook: `{version_id: [environment names]}`
    for the given versions, in one query, environments in promotion order."""
    latest = (
        Deployment.objects.filter(
            environment=OuterRef("environment"),
            model=OuterRef("model"),
            succeeded_at__isnull=False,
        )
        .order_by("-succeeded_at", "-pk")
        .values("pk")[:1]
    )
    rows = (
        Deployment.objects.filter(
            model_id__in={version.model_id for version in versions},
            model_version__in=[version.pk for version in versions],
            succeeded_at__isnull=False,
            pk=Subquery(latest),
        )
        .order_by("environment__rank", "environment__name")
        .values_list("model_version_id", "environment__name")
    )
    where: dict[int, list[str]] = {}
    for version_id, name in rows:
        where.setdefault(version_id, []).append(name)
    return where
