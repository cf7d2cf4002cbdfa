"""The environments, and which policy version is in force in each."""

from collections.abc import Sequence

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.utils import timezone

from portal.exceptions import NotFound
from portal.models import Team
from releases.models import Environment, EnvironmentPolicy, FreezeWindow
from releases.selectors.live import live_in_environments


def _with_teams(queryset: QuerySet[EnvironmentPolicy]) -> QuerySet[EnvironmentPolicy]:
    return queryset.select_related("environment", "soak_source", "high_risk_team").prefetch_related(
        Prefetch("approval_teams", queryset=Team.objects.order_by("name")),
        "low_risk_approval_teams",
    )


def environment_names() -> set[str]:
    return set(Environment.objects.values_list("name", flat=True))


def environment_policy_current(*, environment: Environment) -> EnvironmentPolicy | None:
    """The latest version: the one every new decision is taken under (rule 13)."""
    return (
        _with_teams(EnvironmentPolicy.objects.filter(environment=environment))
        .order_by("-version")
        .first()
    )


def environment_policies_current() -> dict[int, EnvironmentPolicy]:
    """The policy in force for every environment, in two queries whatever their number."""
    latest = (
        EnvironmentPolicy.objects.filter(environment=OuterRef("environment"))
        .order_by("-version")
        .values("version")[:1]
    )
    policies = _with_teams(EnvironmentPolicy.objects.filter(version=Subquery(latest)))
    return {policy.environment_id: policy for policy in policies}


def freeze_windows_active() -> QuerySet[FreezeWindow]:
    """Freezes that still stand (not cancelled), oldest first."""
    return FreezeWindow.objects.filter(cancelled_at__isnull=True).select_related("environment")


def production_environment_names() -> set[str]:
    """Environments marked as production (the registry compares model cards against them)."""
    return set(Environment.objects.filter(is_production=True).values_list("name", flat=True))


def environments_read(*, production: bool | None = None) -> QuerySet[Environment]:
    """Environments in promotion order with the policy in force (the latest version, with its
    approval teams) and the freezes that have not ended and were not cancelled, by prefetch:
    a fixed number of queries for any page."""
    latest = (
        EnvironmentPolicy.objects.filter(environment=OuterRef("environment"))
        .order_by("-version")
        .values("version")[:1]
    )
    standing = FreezeWindow.objects.filter(
        cancelled_at__isnull=True, ends_at__gt=timezone.now()
    ).order_by("starts_at", "id")
    environments = Environment.objects.prefetch_related(
        Prefetch(
            "policies",
            queryset=_with_teams(EnvironmentPolicy.objects.filter(version=Subquery(latest))),
            to_attr="policies_in_force",
        ),
        Prefetch("freezes", queryset=standing, to_attr="freezes_standing"),
    )
    if production is not None:
        environments = environments.filter(is_production=production)
    return environments.order_by("rank", "name")


def environment_read(*, name: str) -> Environment:
    found = environments_read().filter(name=name).first() if "\x00" not in name else None
    if found is None:
        raise NotFound(
            f"No environment is named '{name}'. Names are exact: the Environments page lists them.",
            code="unknown_environment",
        )
    return found


def environments_with_live(environments: Sequence[Environment]) -> list[Environment]:
    """`environments` (from `environments_read`), each with `policy_in_force` and `live_now`,
    what is live there now per model."""
    live = live_in_environments(environments)
    for environment in environments:
        environment.policy_in_force = next(iter(environment.policies_in_force), None)
        environment.live_now = live[environment.pk]
    return list(environments)
