"""What a rollback would do in an environment, for every model at once: the environment page asks
here which rows get a "Roll back" button, so it never offers a rollback that
`services.deployments.rollback_plan` would refuse (rule 10)."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain

from django.db.models import CharField, F, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Cast, Coalesce, Concat

from registry.models import RegisteredModel
from releases.models import Deployment, DeploymentStatus, Environment

# Stands for "no cutoff" when the replaced attempt never succeeded: later than any deployment.
_END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)
# How many earlier deployments per model the page reads in its one query; a longer walk (many
# rollbacks in a row) reads on for that model only.
WALK = 6


@dataclass(frozen=True)
class RollbackOption:
    replaced: Deployment
    target_id: int | None

    @property
    def possible(self) -> bool:
        return self.target_id is not None and self.replaced.status != DeploymentStatus.ROLLED_BACK


_UNDECIDED = -1


def rollback_target(replaced: Deployment, earlier: Iterable[tuple[int, int, str]]) -> int | None:
    """Rule 10, `rollback_plan`'s walk: `earlier` are the (id, version id, status) of what was live
    before `replaced`, latest first. The first version met that is not `replaced`'s own (when it
    succeeded), at its latest time there, not itself rolled back. `_UNDECIDED` when `earlier`
    ran out before the history did (see `WALK`)."""
    seen = {replaced.model_version_id} if replaced.succeeded_at else set()
    for pk, version_id, status in earlier:
        if pk is None:
            return None
        if version_id in seen:
            continue
        seen.add(version_id)
        if status != DeploymentStatus.ROLLED_BACK:
            return pk
    return _UNDECIDED


def _earlier(history: QuerySet[Deployment]) -> QuerySet[Deployment]:
    """Succeeded before the replaced row's cutoff, latest first (the `deployment_live` index)."""
    return (
        history.filter(succeeded_at__isnull=False)
        .filter(succeeded_at__lt=OuterRef("cutoff"), model=OuterRef("model"))
        .exclude(pk=OuterRef("pk"))
        .order_by("-succeeded_at", "-pk")
    )


# Where the history ends.
END = (None, None, None)


def _packed(row: str | None) -> tuple:
    if row is None:
        return END
    pk, version_id, status = row.split(":")
    return int(pk), int(version_id), status


def rollback_options(*, environment: Environment) -> dict[int, RollbackOption]:
    """By model id: the deployment a rollback would replace (the latest recorded attempt) and the
    one whose version it would put back. Two queries however many models, unless a model's walk
    is longer than `WALK`.

    The latest attempt is found by the `deployment_history` index (start time, then id), where
    `rollback_plan` takes the highest id: the two differ only if an attempt was recorded with a
    start time earlier than an attempt recorded before it."""
    history = Deployment.objects.filter(environment=environment)
    latest = history.filter(model=OuterRef("pk")).order_by("-started_at", "-pk").values("pk")[:1]
    replaced_ids = list(
        RegisteredModel.objects.annotate(latest=Subquery(latest))
        .filter(latest__isnull=False)
        .values_list("latest", flat=True)
    )
    packed = Concat(
        Cast("pk", CharField()),
        Value(":"),
        Cast("model_version_id", CharField()),
        Value(":"),
        "status",
        output_field=CharField(),
    )
    steps = _earlier(history).annotate(packed=packed).values("packed")
    replaced = (
        Deployment.objects.filter(pk__in=replaced_ids)
        .annotate(cutoff=Coalesce(F("succeeded_at"), Value(_END_OF_TIME)))
        .annotate(**{f"step_{n}": Subquery(steps[n : n + 1]) for n in range(WALK)})
        .select_related("change_request")
    )
    options = {}
    for deployment in replaced:
        walk = [_packed(getattr(deployment, f"step_{n}")) for n in range(WALK)]
        target_id = rollback_target(deployment, walk)
        if target_id == _UNDECIDED:
            rest = (
                history.filter(model=deployment.model_id, succeeded_at__isnull=False)
                .filter(succeeded_at__lt=deployment.cutoff)
                .exclude(pk=deployment.pk)
                .order_by("-succeeded_at", "-pk")
                .values_list("pk", "model_version_id", "status")
            )
            target_id = rollback_target(deployment, chain(rest.iterator(chunk_size=50), [END]))
        options[deployment.model_id] = RollbackOption(replaced=deployment, target_id=target_id)
    return options
