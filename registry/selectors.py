"""Reads of the registry. Every signed-in person and every token may read the whole registry, so
these take no user; they exist so pages and the API share one efficient query each."""

import re
from dataclasses import dataclass
from datetime import date

from django.db.models import BooleanField, Count, ExpressionWrapper, Max, Prefetch, Q, QuerySet
from django.utils import timezone

from portal.exceptions import NotFound
from registry import git, hooks
from registry.models import (
    DatasetVersion,
    LifecycleStatus,
    ModelVersion,
    RegisteredModel,
    ValidationStepUp,
)


def model_list(*, q: str = "", owner_team: str = "", risk_tier: int | None = None) -> QuerySet:
    """Models with their version count and latest registration, filtered by a name search, the
    owner team's slug and the risk tier."""
    models = RegisteredModel.objects.select_related("owner_team").annotate(
        version_count=Count("versions"), latest_version_at=Max("versions__created_at")
    )
    if q:
        models = models.filter(Q(name__icontains=q) | Q(description__icontains=q))
    if owner_team:
        models = models.filter(owner_team__slug=owner_team)
    if risk_tier:
        models = models.filter(risk_tier=risk_tier)
    return models.order_by("name")


def model_get(*, name: str) -> RegisteredModel:
    model = RegisteredModel.objects.select_related("owner_team").filter(name=name).first()
    if model is None:
        raise NotFound(
            f"No model is registered as '{name}'. The Registry page lists the models; a "
            "model is registered first (POST /api/v1/models/).",
            code="unknown_model",
        )
    return model


def versions_with_evidence() -> QuerySet:
    """Versions with what a page or a response shows of them, in a fixed number of queries."""
    return ModelVersion.objects.select_related("model", "repository").prefetch_related(
        Prefetch("datasets", queryset=DatasetVersion.objects.order_by("name", "version")),
        "artifact_checks",
    )


def validation_step_up_waits(*, state: str) -> bool:
    """Whether the provider's answer with this `state` is for a validation's conclusion: the
    provider knows one return address for every signature (`releases:signature-returned`)."""
    return bool(state) and ValidationStepUp.objects.filter(state=state).exists()


def model_versions(
    *,
    model: RegisteredModel,
    commit_sha: str = "",
    version: str = "",
    artifact_sha256: str = "",
) -> QuerySet:
    versions = versions_with_evidence().filter(model=model)
    if commit_sha:
        versions = versions.filter(commit_sha=commit_sha.lower())
    if version:
        versions = versions.filter(version=version)
    if artifact_sha256:
        versions = versions.filter(artifact_sha256=artifact_sha256.lower())
    return versions.order_by("-created_at", "-id")


def model_version_get(*, model_name: str, version: str) -> ModelVersion:
    found = versions_with_evidence().filter(model__name=model_name, version=version).first()
    if found is None:
        raise NotFound(
            f"{model_name} has no version '{version}'. Its page lists its versions; CI "
            "registers each build (gatehouse_ci.py build, docs/ci.md).",
            code="unknown_version",
        )
    return found


def dataset_list(*, q: str = "") -> QuerySet:
    datasets = DatasetVersion.objects.annotate(version_count=Count("model_versions"))
    if q:
        datasets = datasets.filter(name__icontains=q)
    return datasets.order_by("name", "-created_at", "-id")


def commits_in_release(
    *, live: ModelVersion | None, candidate: ModelVersion
) -> list[git.CommitInfo]:
    """What a release brings: the commits after the live version's commit up to the candidate's,
    newest first (all of the candidate's history, capped, when nothing is live yet). Empty when
    the repository has no mirror or the two versions come from different repositories."""
    if live is not None and live.repository_id != candidate.repository_id:
        return []
    base = live.commit_sha if live is not None else None
    return git.commits_between(candidate.repository, base, candidate.commit_sha)


@dataclass(frozen=True)
class InventoryFilters:
    risk_tier: int | None = None
    lifecycle_status: str = ""
    owner_team: str = ""
    validation_due_by: date | None = None


def model_inventory(*, filters: InventoryFilters) -> QuerySet[RegisteredModel]:
    """The model inventory (issue 16) with what its page and exports show, in a fixed number of
    queries whatever the number of models."""
    models = RegisteredModel.objects.select_related(
        "owner_team", "model_risk_owner"
    ).prefetch_related(
        Prefetch("upstream_models", queryset=RegisteredModel.objects.only("id", "name"))
    )
    if filters.risk_tier is not None:
        models = models.filter(risk_tier=filters.risk_tier)
    if filters.lifecycle_status:
        models = models.filter(lifecycle_status=filters.lifecycle_status)
    if filters.owner_team:
        models = models.filter(owner_team__slug=filters.owner_team)
    if filters.validation_due_by is not None:
        models = models.filter(next_validation_due__lte=filters.validation_due_by)
    return models.order_by("risk_tier", "name")


INVENTORY_PAGE_SIZE = 50


@dataclass(frozen=True)
class InventoryPosition:
    """A place in the inventory's order, written `<tier>.<name>` in the page's links. Names are
    unique, so (risk tier, name) orders every model and a page starts just after one place or
    ends just before one."""

    risk_tier: int
    name: str

    @classmethod
    def parse(cls, raw: str) -> "InventoryPosition | None":
        """The position a link wrote; None for anything else, and the page starts at the top."""
        written = re.fullmatch(r"([1-3])\.([-a-zA-Z0-9_]{1,100})", raw)
        return cls(risk_tier=int(written[1]), name=written[2]) if written else None

    def __str__(self) -> str:
        return f"{self.risk_tier}.{self.name}"

    def later(self) -> Q:
        return Q(risk_tier__gt=self.risk_tier) | Q(risk_tier=self.risk_tier, name__gt=self.name)

    def earlier(self) -> Q:
        return Q(risk_tier__lt=self.risk_tier) | Q(risk_tier=self.risk_tier, name__lt=self.name)


def _position(model: RegisteredModel) -> InventoryPosition:
    return InventoryPosition(risk_tier=model.risk_tier, name=model.name)


def validation_lapsed(*, today: date) -> Q:
    """What the inventory flags: a model in production whose next validation date has passed."""
    return Q(
        lifecycle_status=LifecycleStatus.IN_PRODUCTION,
        next_validation_due__isnull=False,
        next_validation_due__lt=today,
    )


@dataclass(frozen=True)
class InventoryPage:
    """One page of the inventory. `total` and `lapsed` count every model the filters select, not
    just the page's; `after` / `before` are where the next and the previous page start, None
    when there is none."""

    rows: list[RegisteredModel]
    total: int
    lapsed: int
    after: InventoryPosition | None
    before: InventoryPosition | None


def model_inventory_page(
    *,
    filters: InventoryFilters,
    after: InventoryPosition | None = None,
    before: InventoryPosition | None = None,
    size: int = INVENTORY_PAGE_SIZE,
) -> InventoryPage:
    """A page of `model_inventory` by keyset on (risk tier, name), so a page further on costs
    what the first does. Each row carries `lapsed` and, when it has lapsed, `live_under_lapse`:
    where its versions are live. A position past every row gives the first page."""
    today = timezone.localdate()
    matching = model_inventory(filters=filters)
    rows_of = matching.annotate(
        lapsed=ExpressionWrapper(validation_lapsed(today=today), output_field=BooleanField())
    )
    if before is not None:
        rows = list(rows_of.filter(before.earlier()).reverse()[: size + 1])
        more_before = len(rows) > size
        rows = rows[:size][::-1]
        more_after = bool(rows) and matching.filter(_position(rows[-1]).later()).exists()
    elif after is not None:
        rows = list(rows_of.filter(after.later())[: size + 1])
        more_after = len(rows) > size
        rows = rows[:size]
        more_before = bool(rows) and matching.filter(_position(rows[0]).earlier()).exists()
    else:
        rows = list(rows_of[: size + 1])
        more_after, more_before = len(rows) > size, False
        rows = rows[:size]
    if not rows and (after is not None or before is not None):
        return model_inventory_page(filters=filters, size=size)
    _mark_live_under_lapse(rows)
    counts = matching.aggregate(
        total=Count("pk"), lapsed=Count("pk", filter=validation_lapsed(today=today))
    )
    return InventoryPage(
        rows=rows,
        total=counts["total"],
        lapsed=counts["lapsed"],
        after=_position(rows[-1]) if more_after else None,
        before=_position(rows[0]) if more_before else None,
    )


def _mark_live_under_lapse(rows: list[RegisteredModel]) -> None:
    """Where the versions of the page's lapsed models are live: two queries, and only when one
    of them has lapsed."""
    lapsed = [model for model in rows if model.lapsed]
    versions = list(ModelVersion.objects.filter(model__in=lapsed).only("id", "model_id", "version"))
    live = hooks.live_environments(versions)
    live_under: dict[int, list[str]] = {}
    for version in versions:
        if live.get(version.pk):
            live_under.setdefault(version.model_id, []).append(
                f"{version.version} in {', '.join(live[version.pk])}"
            )
    for model in rows:
        model.live_under_lapse = live_under.get(model.pk, [])
