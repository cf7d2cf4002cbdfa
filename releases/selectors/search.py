"""One search box: "where is this change, model, commit, artifact, dataset or person's work, and
what happened to it" (issue 19).

The query is read as every kind it could be (`42` is a change request number and a piece of a
model's name; `a1b2c3d` a commit prefix and a digest prefix) and the answer is grouped by the kind
that matched. Every kind asks a fixed number of indexed questions, and what is live and the
history of all hits are then read together, so the number of queries follows the shape of the
query, never the size of the history: the same at a thousand and at a million deployments
(bench/bench_platform.py measures it). Prefixes of commit and digest use the `..._prefix` indexes
(`varchar_pattern_ops` on PostgreSQL, so `LIKE 'abc1234%'` is an index range scan).
"""

import re
from dataclasses import dataclass, field
from functools import reduce
from operator import and_

from django.contrib.auth import get_user_model
from django.db.models import F, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.functions import RowNumber

from portal.exceptions import BadRequest
from registry.models import DatasetVersion, ModelVersion, RegisteredModel
from releases.models import ChangeRequest, Deployment, Environment, SignOff
from releases.selectors.live import with_provenance

MIN_PREFIX = 7
MIN_NAME = 2
MAX_QUERY = 100
HITS = 10
HISTORY = 10
PEOPLE = 5

HEX = re.compile(r"[0-9a-f]+")
CHANGE_NUMBER = re.compile(r"(?:cr-?)?([0-9]{1,9})", re.IGNORECASE)


@dataclass
class VersionHit:
    """A build, where it is live now (with who put it there) and its latest deployments and
    change requests."""

    version: ModelVersion
    live: list[Deployment] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    change_requests: list[ChangeRequest] = field(default_factory=list)


@dataclass
class ModelHit:
    model: RegisteredModel
    live: list[Deployment] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    change_requests: list[ChangeRequest] = field(default_factory=list)


@dataclass
class ChangeRequestHit:
    change_request: ChangeRequest
    build: VersionHit


@dataclass
class DatasetHit:
    """A dataset version and the builds trained on it."""

    dataset: DatasetVersion
    builds: list[VersionHit] = field(default_factory=list)


@dataclass
class PersonHit:
    person: object
    change_requests: list[ChangeRequest] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    sign_offs: list[SignOff] = field(default_factory=list)


@dataclass
class SearchResult:
    query: str
    notes: list[str] = field(default_factory=list)
    change_requests: list[ChangeRequestHit] = field(default_factory=list)
    models: list[ModelHit] = field(default_factory=list)
    commits: list[VersionHit] = field(default_factory=list)
    artifacts: list[VersionHit] = field(default_factory=list)
    datasets: list[DatasetHit] = field(default_factory=list)
    people: list[PersonHit] = field(default_factory=list)
    # The kinds that matched more than the answer shows: the query should be longer.
    truncated: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return any(
            (self.change_requests, self.models, self.commits, self.artifacts, self.datasets)
        ) or bool(self.people)


def search(*, query: str) -> SearchResult:
    """Everything the query can name, grouped by kind, each with where it is live and its
    history. Refuses (400 `query_too_short`) what cannot name anything precisely enough."""
    text = " ".join(query.split())[:MAX_QUERY]
    number = CHANGE_NUMBER.fullmatch(text)
    if not text:
        raise BadRequest(
            "Type a change request number (CR-42), a model name, a commit or an artifact digest "
            f"(at least {MIN_PREFIX} hex characters), a dataset or a person.",
            code="query_missing",
        )
    if len(text) < MIN_NAME and not number:
        raise BadRequest(
            f"'{text}' is too short to search: type at least {MIN_NAME} characters of a name, "
            f"or {MIN_PREFIX} hex characters of a commit or digest.",
            code="query_too_short",
        )
    result = SearchResult(query=text)
    lowered = text.lower()
    is_hex = bool(HEX.fullmatch(lowered))
    if is_hex and len(lowered) < MIN_PREFIX and not number:
        result.notes.append(
            f"'{text}' has {len(lowered)} hex characters: commits and artifact digests are "
            f"searched from {MIN_PREFIX}, so that a prefix names one build."
        )

    if number:
        result.change_requests = [
            ChangeRequestHit(change_request=change, build=VersionHit(change.model_version))
            for change in ChangeRequest.objects.filter(pk=int(number.group(1))).select_related(
                "model_version__model", "environment", "requester", "team"
            )
        ]
    if " " not in text:
        models = _limited(
            result,
            "models",
            RegisteredModel.objects.filter(name__icontains=lowered)
            .select_related("owner_team")
            .order_by("name"),
        )
        # The exact name first, whatever the alphabet says.
        result.models = [ModelHit(m) for m in sorted(models, key=lambda m: m.name != lowered)]
    if is_hex and MIN_PREFIX <= len(lowered) <= 40:
        result.commits = _versions(result, "commits", commit_sha__startswith=lowered)
    if is_hex and MIN_PREFIX <= len(lowered) <= 64:
        result.artifacts = _versions(result, "artifacts", artifact_sha256__startswith=lowered)
    datasets = _limited(
        result,
        "datasets",
        DatasetVersion.objects.filter(name__startswith=text).order_by("name", "-created_at"),
    )
    if datasets:
        result.datasets = _trained_on(datasets)
    result.people = _people(result, text)

    builds = [hit.build for hit in result.change_requests] + result.commits + result.artifacts
    builds += [build for hit in result.datasets for build in hit.builds]
    _fill_live(builds, result.models)
    _fill_history(builds, result.models)
    return result


def _limited(result: SearchResult, kind: str, queryset: QuerySet) -> list:
    """At most HITS rows; one more is read to know whether the query should be longer."""
    rows = list(queryset[: HITS + 1])
    if len(rows) > HITS:
        result.truncated.append(kind)
        result.notes.append(
            f"More than {HITS} {kind} match '{result.query}'; the first {HITS} are shown: "
            "type more of it to narrow the search."
        )
    return rows[:HITS]


def _versions(result: SearchResult, kind: str, **prefix) -> list[VersionHit]:
    queryset = ModelVersion.objects.filter(**prefix).select_related("model").order_by("-created_at")
    return [VersionHit(version) for version in _limited(result, kind, queryset)]


def _trained_on(datasets: list[DatasetVersion]) -> list[DatasetHit]:
    """The latest builds trained on each dataset version, HISTORY at most each, in one query."""
    through = ModelVersion.datasets.through
    links = (
        through.objects.filter(datasetversion__in=datasets)
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=F("datasetversion"),
                order_by=F("modelversion__created_at").desc(),
            )
        )
        .filter(rank__lte=HISTORY)
        .select_related("modelversion__model")
    )
    builds: dict[int, list[VersionHit]] = {}
    for link in links:
        builds.setdefault(link.datasetversion_id, []).append(VersionHit(link.modelversion))
    return [DatasetHit(dataset, builds.get(dataset.pk, [])) for dataset in datasets]


def _people(result: SearchResult, text: str) -> list[PersonHit]:
    """People by username or by every word of their name; their latest changes, deployments
    and sign-offs."""
    words = text.split()
    matches = reduce(
        and_,
        (
            Q(username__icontains=word)
            | Q(first_name__icontains=word)
            | Q(last_name__icontains=word)
            for word in words
        ),
    )
    users = get_user_model().objects.filter(matches, is_active=True).order_by("username")
    people = list(users[: PEOPLE + 1])
    if len(people) > PEOPLE:
        result.truncated.append("people")
        result.notes.append(
            f"More than {PEOPLE} people match '{text}'; type more of a name or the username."
        )
        people = people[:PEOPLE]
    if not people:
        return []
    hits = {person.pk: PersonHit(person) for person in people}
    for change in _latest(
        ChangeRequest.objects.filter(requester__in=people).select_related(
            "model_version__model", "environment", "requester"
        ),
        partition="requester",
        order="created_at",
    ):
        hits[change.requester_id].change_requests.append(change)
    for deployment in _latest(
        Deployment.objects.filter(started_by_user__in=people).select_related(
            "model_version__model", "environment", "change_request"
        ),
        partition="started_by_user",
        order="started_at",
    ):
        hits[deployment.started_by_user_id].deployments.append(deployment)
    for sign_off in _latest(
        SignOff.objects.filter(signer__in=people).select_related(
            "change_request__model_version__model", "change_request__environment", "team"
        ),
        partition="signer",
        order="signed_at",
    ):
        hits[sign_off.signer_id].sign_offs.append(sign_off)
    return list(hits.values())


def _latest(queryset: QuerySet, *, partition: str, order: str) -> QuerySet:
    """The HISTORY latest rows of each `partition`, newest first, in one statement."""
    return (
        queryset.annotate(
            rank=Window(RowNumber(), partition_by=F(partition), order_by=F(order).desc())
        )
        .filter(rank__lte=HISTORY)
        .order_by(f"-{order}", "-pk")
    )


def _fill_live(builds: list[VersionHit], models: list[ModelHit]) -> None:
    """What is live now in every environment for the models of the hits: one probe of the
    `deployment_live` index per (model, environment), then the provenance of those rows."""
    model_ids = {hit.version.model_id for hit in builds} | {hit.model.pk for hit in models}
    if not model_ids:
        return
    environments = list(Environment.objects.order_by("rank", "name").values_list("pk", flat=True))
    if not environments:
        return
    probes = {
        f"live_{pk}": Subquery(
            Deployment.objects.filter(
                environment=pk, model=OuterRef("pk"), succeeded_at__isnull=False
            )
            .order_by("-succeeded_at", "-pk")
            .values("pk")[:1]
        )
        for pk in environments
    }
    rows = RegisteredModel.objects.filter(pk__in=model_ids).annotate(**probes).values(*probes)
    ids = [pk for row in rows for pk in row.values() if pk is not None]
    live = list(
        with_provenance(Deployment.objects.filter(pk__in=ids)).order_by(
            "environment__rank", "environment__name"
        )
    )
    for hit in builds:
        hit.live = [d for d in live if d.model_version_id == hit.version.pk]
    for hit in models:
        hit.live = [d for d in live if d.model_id == hit.model.pk]


def _fill_history(builds: list[VersionHit], models: list[ModelHit]) -> None:
    """The latest deployments and change requests of each hit: four statements in all."""
    version_ids = {hit.version.pk for hit in builds}
    model_ids = {hit.model.pk for hit in models}
    deployments = Deployment.objects.select_related(
        "environment", "model_version", "change_request"
    )
    changes = ChangeRequest.objects.select_related("environment", "model_version", "requester")
    # Keyed by ("d" for deployments or "c" for change requests, the hit's id).
    by_version: dict[tuple[str, int], list] = {}
    by_model: dict[tuple[str, int], list] = {}
    if version_ids:
        for d in _latest(
            deployments.filter(model_version__in=version_ids),
            partition="model_version",
            order="started_at",
        ):
            by_version.setdefault(("d", d.model_version_id), []).append(d)
        for c in _latest(
            changes.filter(model_version__in=version_ids),
            partition="model_version",
            order="created_at",
        ):
            by_version.setdefault(("c", c.model_version_id), []).append(c)
    if model_ids:
        for d in _latest(
            deployments.filter(model__in=model_ids), partition="model", order="started_at"
        ):
            by_model.setdefault(("d", d.model_id), []).append(d)
        for c in _latest(
            changes.filter(model_version__model__in=model_ids),
            partition="model_version__model",
            order="created_at",
        ):
            by_model.setdefault(("c", c.model_version.model_id), []).append(c)
    for hit in builds:
        hit.deployments = by_version.get(("d", hit.version.pk), [])
        hit.change_requests = by_version.get(("c", hit.version.pk), [])
    for hit in models:
        hit.deployments = by_model.get(("d", hit.model.pk), [])
        hit.change_requests = by_model.get(("c", hit.model.pk), [])
