"""Reads of the registry. Every signed-in person and every token may read the whole registry, so
these take no user; they exist so pages and the API share one efficient query each."""

from dataclasses import dataclass
from datetime import date

from django.db.models import Count, Max, Prefetch, Q, QuerySet

from portal.exceptions import NotFound
from registry import git
from registry.models import DatasetVersion, ModelVersion, RegisteredModel, ValidationStepUp


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
