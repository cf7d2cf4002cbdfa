"""What a rollback would do in an environment, for every model at once: the environment page asks
here which rows get a "Roll back" button, so it never offers a rollback that
`services.deployments.rollback_plan` would refuse (rule 10)."""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Case, Exists, F, IntegerField, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce

from registry.models import RegisteredModel
from releases.models import Deployment, DeploymentStatus, Environment

# Stands for "no cutoff" when the replaced attempt never succeeded: later than any deployment.
_END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True)
class RollbackOption:
    replaced: Deployment
    target_id: int | None

    @property
    def possible(self) -> bool:
        return self.target_id is not None and self.replaced.status != DeploymentStatus.ROLLED_BACK


def rollback_options(*, environment: Environment) -> dict[int, RollbackOption]:
    """By model id: the deployment a rollback would replace (the latest recorded attempt) and the
    one whose version it would put back, by `rollback_plan`'s rule: among the versions live
    before the replaced attempt (its own version aside when it succeeded), the most recent whose
    latest time there was not itself rolled back. Two queries however many models."""
    history = Deployment.objects.filter(environment=environment)
    latest = history.filter(model=OuterRef("pk")).order_by("-pk")
    succeeded = history.filter(
        model=OuterRef("pk"), succeeded_at__isnull=False, succeeded_at__lt=OuterRef("cutoff")
    ).exclude(pk=OuterRef("replaced_id"))
    later_same_version = (
        history.filter(
            model=OuterRef(OuterRef("pk")),
            model_version=OuterRef("model_version"),
            succeeded_at__isnull=False,
            succeeded_at__lt=OuterRef(OuterRef("cutoff")),
        )
        .exclude(pk=OuterRef(OuterRef("replaced_id")))
        .filter(
            Q(succeeded_at__gt=OuterRef("succeeded_at"))
            | Q(succeeded_at=OuterRef("succeeded_at"), pk__gt=OuterRef("pk"))
        )
    )
    target = (
        succeeded.exclude(model_version=OuterRef("excluded_version"))
        .exclude(status=DeploymentStatus.ROLLED_BACK)
        .filter(~Exists(later_same_version))
        .order_by("-succeeded_at", "-pk")
    )
    rows = (
        RegisteredModel.objects.annotate(
            replaced_id=Subquery(latest.values("pk")[:1]),
            replaced_succeeded_at=Subquery(latest.values("succeeded_at")[:1]),
            replaced_version=Subquery(latest.values("model_version")[:1]),
        )
        .filter(replaced_id__isnull=False)
        .annotate(
            cutoff=Coalesce(F("replaced_succeeded_at"), Value(_END_OF_TIME)),
            # A version id no row has, when the replaced attempt's version was never live.
            excluded_version=Case(
                When(replaced_succeeded_at__isnull=False, then=F("replaced_version")),
                default=Value(0),
                output_field=IntegerField(),
            ),
        )
        .annotate(target_id=Subquery(target.values("pk")[:1]))
        .values_list("pk", "replaced_id", "target_id")
    )
    targets = {replaced_id: (model_id, target_id) for model_id, replaced_id, target_id in rows}
    replaced = Deployment.objects.filter(pk__in=targets).select_related("change_request")
    return {
        targets[d.pk][0]: RollbackOption(replaced=d, target_id=targets[d.pk][1]) for d in replaced
    }
