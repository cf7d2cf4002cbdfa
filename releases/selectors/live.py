"""What is live, and what was live at any past moment.

What was live in (environment, model) at T is the latest deployment there with `succeeded_at`
at or before T. A deployment later rolled back keeps its `succeeded_at`, so it still answers for
the moments before its rollback. Each answer is one query on the `deployment_live` index; the
related rows the pages show come with it (joins) or in a fixed number of prefetches.
"""

from datetime import datetime

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery

from registry.models import RegisteredModel
from releases.models import (
    ChangeRequest,
    Decision,
    Deployment,
    Environment,
    HealthCheck,
    SignOff,
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


def live_in_environment(
    *, environment: Environment, at: datetime | None = None
) -> QuerySet[Deployment]:
    """One row per model that is (or was at `at`) live in the environment, by model name."""
    latest = (
        Deployment.objects.filter(
            environment=environment, model=OuterRef("model"), **_succeeded_by(at)
        )
        .order_by("-succeeded_at", "-pk")
        .values("pk")[:1]
    )
    queryset = Deployment.objects.filter(
        environment=environment, pk=Subquery(latest), **_succeeded_by(at)
    ).order_by("model__name")
    return with_provenance(queryset)


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


def live_for_model(*, model: RegisteredModel, at: datetime | None = None) -> QuerySet[Deployment]:
    """Where each version of one model is (or was at `at`) live: one row per environment."""
    latest = (
        Deployment.objects.filter(
            environment=OuterRef("environment"), model=model, **_succeeded_by(at)
        )
        .order_by("-succeeded_at", "-pk")
        .values("pk")[:1]
    )
    return (
        Deployment.objects.filter(model=model, pk=Subquery(latest), **_succeeded_by(at))
        .select_related("environment", "model_version")
        .order_by("environment__rank")
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


def overdue_retrospectives(
    *, environment: Environment | None = None, now: datetime
) -> QuerySet[ChangeRequest]:
    """Rule 11: deployed emergency changes whose retrospective reviews are past due."""
    queryset = ChangeRequest.objects.filter(
        kind=Kind.EMERGENCY,
        state__in=[State.DEPLOYED, State.RETRO_REVIEW],
        retrospective_due_at__lt=now,
    )
    if environment is not None:
        queryset = queryset.filter(environment=environment)
    return queryset.select_related("model_version__model", "requester")
