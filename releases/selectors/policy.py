"""The environments, and which policy version is in force in each."""

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery

from portal.models import Team
from releases.models import Environment, EnvironmentPolicy, FreezeWindow


def _with_teams(queryset: QuerySet[EnvironmentPolicy]) -> QuerySet[EnvironmentPolicy]:
    return queryset.select_related("environment", "soak_source").prefetch_related(
        Prefetch("approval_teams", queryset=Team.objects.order_by("name"))
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
