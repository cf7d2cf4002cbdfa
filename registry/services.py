"""Writes to the model registry. CI calls these over REST and retries, so each registration is
idempotent on its natural key: the same payload again returns the recorded row (`created` is
False), a different payload under the same key is a conflict. Nothing here updates a version or a
dataset version: they are evidence, and the database refuses edits too (migration 0002)."""

import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Model
from django.utils import timezone

from audit.actions import AuditAction
from audit.models import ActorKind
from audit.services import audit_record, describe_actor
from portal.exceptions import Conflict, NotFound
from portal.models import ServiceAccount, Team
from portal.queue import enqueue_on_commit
from portal.validators import HTTP_URL, PlainName
from registry import git
from registry.artifacts import ArtifactReading, artifact_read
from registry.models import (
    ArtifactCheck,
    ArtifactCheckPurpose,
    ArtifactOutcome,
    DatasetVersion,
    ModelVersion,
    RegisteredModel,
    Repository,
)
from registry.permissions import token_team_denial
from registry.pipelines import linked_to_gitlab
from registry.tasks import refresh_pipeline_status

Actor = AbstractBaseUser | ServiceAccount | None
Record = TypeVar("Record", bound=Model)

SHA1_RE = re.compile(r"^[0-9a-f]{40}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
HTTP_URL_RE = re.compile(HTTP_URL)  # the pattern the schema states
REPOSITORY_URL_RE = re.compile(
    r"^(?:(?:https?|ssh|git)://(?:[^\s/@]+@)?[^\s/?#@:]+(?::\d+)?/[^\s]+"
    r"|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s/][^\s]*)$"
)
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
# "7" is a plain number; "07", "7.0" and "v7" are names.
PLAIN_NUMBER_RE = re.compile(r"^[1-9][0-9]{0,17}$")


class Errors:
    """Collects field → messages so one response names every problem at once."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.fields.setdefault(field, []).append(message)

    def raise_any(self) -> None:
        if self.fields:
            raise ValidationError(self.fields)


def _check_sha1(errors: Errors, field: str, value: str) -> None:
    if not SHA1_RE.match(value or ""):
        errors.add(field, "Must be a full git commit SHA: 40 lowercase hexadecimal characters.")


def _check_sha256(errors: Errors, field: str, value: str, *, required: bool = True) -> None:
    if not value and not required:
        return
    if not SHA256_RE.match(value or ""):
        errors.add(field, "Must be a sha256 digest: 64 lowercase hexadecimal characters.")


def _check_http_url(errors: Errors, field: str, value: str) -> None:
    if value and not HTTP_URL_RE.fullmatch(value):
        errors.add(field, "Must be an http:// or https:// URL.")


# What a model card says (issue 16); `reference` points at one kept elsewhere.
MODEL_CARD_FIELDS = {
    "purpose": str,
    "training_data": str,
    "training_period": str,
    "evaluation": list,
    "limitations": str,
    "fairness": str,
    "stability": str,
    "monitoring": str,
    "reference": str,
}


# The audit trail's canonical JSON (RFC 8785) holds a number exactly up to 2**53 - 1.
JSON_SAFE_INTEGER = 2**53 - 1


def _build_scalar_problem(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return "Must hold no NUL character, in a name or a value." if "\x00" in value else None
    if isinstance(value, int | float):
        if -JSON_SAFE_INTEGER <= value <= JSON_SAFE_INTEGER:
            return None
        return (
            f"{value} is beyond ±{JSON_SAFE_INTEGER} (2**53 - 1), the largest number the audit "
            "trail holds exactly: record it as a string."
        )
    return "Values are text, numbers, true/false or null, or a list or object of those."


def build_record_problem(record: Any) -> str | None:
    """What is wrong with a build's params or metrics, as its schema states them: an object
    whose values are text, numbers within ±(2**53 - 1), true/false or null, or one list or
    object of those; no NUL character in a name or a value (PostgreSQL cannot store one)."""
    if not isinstance(record, dict):
        return "Must be a JSON object."
    for name, value in record.items():
        inner = value.values() if isinstance(value, dict) else value
        names = [name, *value.keys()] if isinstance(value, dict) else [name]
        if any("\x00" in each for each in names):
            return "Must hold no NUL character, in a name or a value."
        for item in inner if isinstance(value, dict | list) else [value]:
            problem = _build_scalar_problem(item)
            if problem is not None:
                return problem
    return None


def _holds_nul(value: Any) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str) and "\x00" in item:
            return True
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _check_model_card(errors: Errors, card: Any) -> None:
    if card is None:
        return
    if not isinstance(card, dict):
        errors.add("model_card", "Must be a JSON object.")
        return
    for key, value in card.items():
        kind = MODEL_CARD_FIELDS.get(key)
        if kind is None:
            errors.add(
                f"model_card.{key}", f"Not a model card field ({', '.join(MODEL_CARD_FIELDS)})."
            )
        elif not isinstance(value, kind):
            errors.add(f"model_card.{key}", f"Must be a {'list' if kind is list else 'string'}.")
    for number, item in enumerate(card.get("evaluation") or [], start=1):
        if not (isinstance(item, dict) and {"metric", "value", "dataset"} <= set(item)):
            errors.add(f"model_card.evaluation.{number}", "Needs metric, value and dataset.")
        elif (problem := build_record_problem(item)) is not None:
            # The same values as a build's metrics: the audit trail's canonical JSON keeps
            # integers exactly only up to 2**53 - 1.
            errors.add(f"model_card.evaluation.{number}", problem)


def _check_version(errors: Errors, field: str, value: str) -> None:
    if not VERSION_RE.match(value or "") or len(value) > 100:
        errors.add(
            field,
            "Must be 1-100 characters: letters, digits, '.', '_', '+' or '-', "
            "starting with a letter or digit.",
        )


def normalise_repository_url(url: str) -> str:
    """One repository, one name: `https://host/group/repo.git/` and `https://host/group/repo`
    are the same repository, as GitLab CI and Jenkins spell it differently."""
    url = (url or "").strip().rstrip("/")
    return url.removesuffix(".git")


def _differences(record: Model, wanted: dict[str, Any]) -> list[str]:
    return sorted(field for field, value in wanted.items() if getattr(record, field) != value)


def _create_once(
    model: type[Record], lookup: dict[str, Any], build: Callable[[], Record]
) -> tuple[Record, bool]:
    """Insert, or return the row a concurrent request inserted first under the same key.

    The unique constraint decides the race; the savepoint keeps the outer transaction usable
    after the losing INSERT.
    """
    existing = model.objects.select_for_update().filter(**lookup).first()
    if existing is not None:
        return existing, False
    record = build()
    try:
        with transaction.atomic():
            record.save()
    except IntegrityError:
        existing = model.objects.select_for_update().filter(**lookup).first()
        if existing is None:
            raise
        return existing, False
    return record, True


@transaction.atomic
def repository_register(*, actor: Actor, url: str, request: Any = None) -> tuple[Repository, bool]:
    """The repository named by `url`, registered on first use. A new one has no mirror and no
    GitLab project: only an administrator adds those (`repository_configure`)."""
    url = normalise_repository_url(url)
    errors = Errors()
    if not REPOSITORY_URL_RE.match(url) or len(url) > 500:
        errors.add(
            "repository",
            "Must be a git repository URL: https://, http://, ssh:// or git@host:path.",
        )
    errors.raise_any()

    def build() -> Repository:
        repository = Repository(url=url)
        repository.full_clean(validate_unique=False, validate_constraints=False)
        return repository

    repository, created = _create_once(Repository, {"url": url}, build)
    if created:
        audit_record(
            actor=actor,
            action=AuditAction.REPOSITORY_REGISTERED,
            target=repository,
            data={"url": url},
            request=request,
        )
    return repository, created


@transaction.atomic
def repository_configure(
    *,
    actor: Actor,
    repository: Repository,
    mirror_path: str,
    gitlab_url: str,
    gitlab_project_id: int | None,
    request: Any = None,
) -> Repository:
    """An administrator points a repository at its local mirror and its GitLab project. These
    decide which commits registration accepts and where commit statuses go, so they are audited."""
    repository = Repository.objects.select_for_update().get(pk=repository.pk)
    errors = Errors()
    gitlab_url = (gitlab_url or "").strip().rstrip("/")
    _check_http_url(errors, "gitlab_url", gitlab_url)
    if bool(gitlab_url) != (gitlab_project_id is not None):
        errors.add("gitlab_project_id", "A GitLab project needs both its URL and its project id.")
    errors.raise_any()
    fields = ("mirror_path", "gitlab_url", "gitlab_project_id")
    before = {field: getattr(repository, field) for field in fields}
    repository.mirror_path = (mirror_path or "").strip()
    repository.gitlab_url = gitlab_url
    repository.gitlab_project_id = gitlab_project_id
    after = {field: getattr(repository, field) for field in fields}
    if before == after:
        return repository
    repository.full_clean()
    repository.save()
    audit_record(
        actor=actor,
        action=AuditAction.REPOSITORY_CONFIGURED,
        target=repository,
        data={"before": before, "after": after},
        request=request,
    )
    return repository


@transaction.atomic
def model_register(
    *,
    actor: Actor,
    name: str,
    owner_team: str,
    description: str = "",
    risk_tier: int = 2,
    request: Any = None,
) -> tuple[RegisteredModel, bool]:
    """Register a model under its name, owned by the team with slug `owner_team`; a token only
    under a team it acts for (rule 15)."""
    errors = Errors()
    team = Team.objects.filter(slug=owner_team).first()
    if not isinstance(risk_tier, int) or not 1 <= risk_tier <= 3:
        errors.add("risk_tier", "Must be 1, 2 or 3.")
    candidate = RegisteredModel(
        name=name, owner_team=team, description=description or "", risk_tier=risk_tier
    )

    def build() -> RegisteredModel:
        candidate.full_clean(validate_unique=False, validate_constraints=False)
        return candidate

    try:
        candidate.clean_fields(exclude=["owner_team", "risk_tier"])
    except ValidationError as error:
        for field, messages in error.message_dict.items():
            for message in messages:
                errors.add(field, message)
    errors.raise_any()
    if team is None:
        raise NotFound(
            f"No team has the slug '{owner_team}'. Use an existing team's slug, such as model-risk "
            "(Admin → Teams lists them); an administrator creates teams there.",
            code="unknown_team",
        )
    denied = token_team_denial(actor, team_id=team.pk, subject=f"Model {name}")
    if denied is not None:
        raise denied

    model, created = _create_once(RegisteredModel, {"name": name}, build)
    if not created:
        changed = _differences(
            model,
            {
                "owner_team_id": team.pk,
                "description": candidate.description,
                "risk_tier": risk_tier,
            },
        )
        if changed:
            raise Conflict(
                f"Model '{name}' is registered already with a different "
                f"{', '.join(f.removesuffix('_id') for f in changed)}. A retry must send what "
                "was registered; an administrator changes a model's details in Admin → "
                "Registered models.",
                code="model_conflict",
            )
        return model, False
    audit_record(
        actor=actor,
        action=AuditAction.MODEL_REGISTERED,
        target=model,
        data={
            "name": name,
            "owner_team": owner_team,
            "description": model.description,
            "risk_tier": risk_tier,
        },
        request=request,
    )
    return model, True


@transaction.atomic
def dataset_version_register(
    *,
    actor: Actor,
    name: str,
    version: str,
    uri: str,
    sha256: str,
    rows: int | None = None,
    schema_sha256: str = "",
    request: Any = None,
) -> tuple[DatasetVersion, bool]:
    """Record one immutable version of a dataset: where it is and the digest of its content.
    "Not versioning data means not versioning your code": versions name these as training data."""
    errors = Errors()
    try:
        PlainName()(name or "")
    except ValidationError as invalid:
        errors.add("name", invalid.messages[0])
    if len(name or "") > 200:
        errors.add("name", "Must be at most 200 characters.")
    _check_version(errors, "version", version)
    if not (uri or "").strip() or len(uri) > 1000:
        errors.add("uri", "Must be 1-1000 characters.")
    _check_sha256(errors, "sha256", sha256)
    _check_sha256(errors, "schema_sha256", schema_sha256 or "", required=False)
    if rows is not None and (not isinstance(rows, int) or rows < 0):
        errors.add("rows", "Must be zero or more.")
    errors.raise_any()

    wanted = {"uri": uri, "sha256": sha256, "rows": rows, "schema_sha256": schema_sha256 or ""}

    def build() -> DatasetVersion:
        dataset = DatasetVersion(name=name, version=version, **wanted)
        dataset.full_clean(validate_unique=False, validate_constraints=False)
        return dataset

    dataset, created = _create_once(DatasetVersion, {"name": name, "version": version}, build)
    if not created:
        changed = _differences(dataset, wanted)
        if changed:
            raise Conflict(
                f"Dataset {name}@{version} is registered already with a different "
                f"{', '.join(changed)}. A registered dataset version never changes: register "
                "this data as a new version.",
                code="dataset_version_conflict",
            )
        return dataset, False
    audit_record(
        actor=actor,
        action=AuditAction.DATASET_VERSION_REGISTERED,
        target=dataset,
        data={"name": name, "version": version, **wanted},
        request=request,
    )
    return dataset, True


def _dataset_keys(errors: Errors, datasets: Iterable[Any]) -> list[tuple[str, str]]:
    keys = []
    for item in datasets or []:
        if not isinstance(item, dict) or not item.get("name") or not item.get("version"):
            errors.add("datasets", "Each dataset is {name, version}.")
            continue
        keys.append((str(item["name"]), str(item["version"])))
    if len(set(keys)) != len(keys):
        errors.add("datasets", "A dataset version is named twice.")
    return sorted(set(keys))


def _known_datasets(keys: list[tuple[str, str]]) -> list[DatasetVersion]:
    if not keys:
        return []
    names = {name for name, _ in keys}
    found = {
        (d.name, d.version): d
        for d in DatasetVersion.objects.filter(name__in=names)
        if (d.name, d.version) in set(keys)
    }
    unknown = [f"{name}@{version}" for name, version in keys if (name, version) not in found]
    if unknown:
        raise NotFound(
            f"Unknown dataset version(s): {', '.join(unknown)}. Register them first "
            "(POST /api/v1/datasets/).",
            code="unknown_dataset",
        )
    return [found[key] for key in keys if key in found]


def _plain_number(version: str) -> int | None:
    return int(version) if PLAIN_NUMBER_RE.match(version) else None


def _next_version_number(model: RegisteredModel) -> str:
    """The number after the model's highest plain-number version, read from the model's row
    (locked by the caller, so two builds never get the same number) whatever the length of its
    history. The probe skips a number that a row loaded outside the services (a restore, a bulk
    load) holds without having moved the model's count."""
    number = model.highest_version_number + 1
    while ModelVersion.objects.filter(model=model, version=str(number)).exists():
        number += 1
    return str(number)


def model_version_register(
    *,
    actor: Actor,
    model: str,
    repository: str,
    commit_sha: str,
    build_id: str,
    artifact_uri: str,
    artifact_sha256: str,
    version: str = "",
    ref: str = "",
    build_url: str = "",
    framework: str = "",
    params: dict | None = None,
    metrics: dict | None = None,
    datasets: list[dict] | None = None,
    env_lock_sha256: str = "",
    model_card: dict | None = None,
    request: Any = None,
) -> tuple[ModelVersion, bool]:
    """Register one build of `model` (rule 1, exact build): one commit, one CI build, one
    artifact digest, its training data and environment lock, never changed afterwards.

    Without `version`, the build (commit and build id) names it: a retry finds the same version,
    a new build gets the number after the model's highest plain-number version (1, 2, 3 …;
    versions such as "1.4.0" are names and do not count). When the repository has a mirror, the
    commit must be in it (`unknown_commit`). A token registers builds only of the models of
    the teams it acts for (rule 15, `token_wrong_team`). Where the artifact's store is connected,
    the digest it holds must be `artifact_sha256` (`artifact_digest_mismatch`); a store that
    cannot answer leaves the version recorded as unverified, with the reason.
    """
    errors = Errors()
    _check_sha1(errors, "commit_sha", commit_sha)
    _check_sha256(errors, "artifact_sha256", artifact_sha256)
    _check_sha256(errors, "env_lock_sha256", env_lock_sha256 or "", required=False)
    _check_http_url(errors, "build_url", build_url)
    if version:
        _check_version(errors, "version", version)
    if not (build_id or "").strip() or len(build_id) > 200:
        errors.add("build_id", "Must be 1-200 characters.")
    if not (artifact_uri or "").strip() or len(artifact_uri) > 1000:
        errors.add("artifact_uri", "Must be 1-1000 characters.")
    for field, value in (("params", params), ("metrics", metrics)):
        problem = build_record_problem(value) if value is not None else None
        if problem is not None:
            errors.add(field, problem)
    if model_card is not None and not isinstance(model_card, dict):
        errors.add("model_card", "Must be a JSON object.")
    elif _holds_nul(model_card):
        # PostgreSQL's JSON cannot store one, and no name or value needs it.
        errors.add("model_card", "Must hold no NUL character, in a name or a value.")
    dataset_keys = _dataset_keys(errors, datasets)
    _check_model_card(errors, model_card)
    if not REPOSITORY_URL_RE.match(normalise_repository_url(repository)):
        errors.add(
            "repository",
            "Must be a git repository URL: https://, http://, ssh:// or git@host:path.",
        )
    registered_model = RegisteredModel.objects.filter(name=model).first()
    if registered_model is None:
        errors.add(
            "model",
            f"No model is registered as '{model}'. Check the name on the Registry page, or "
            "register the model first (POST /api/v1/models/).",
        )
    errors.raise_any()
    denied = token_team_denial(
        actor, team_id=registered_model.owner_team_id, subject=registered_model.name
    )
    if denied is not None:
        raise denied

    # Git may fetch over the network: do it before any database lock is taken.
    known = Repository.objects.filter(url=normalise_repository_url(repository)).first()
    if known is not None and known.mirror_path and not git.commit_exists(known, commit_sha):
        raise Conflict(
            f"Commit {commit_sha} is not in the mirror of {known.url}. Push it, or wait for "
            "the mirror to fetch, then retry.",
            code="unknown_commit",
        )
    reading = artifact_read(artifact_uri, expected_sha256=artifact_sha256)
    if reading.outcome == ArtifactOutcome.MISMATCH:
        raise _digest_mismatch(artifact_uri, artifact_sha256, reading)
    return _model_version_insert(
        actor=actor,
        model=registered_model,
        repository_url=repository,
        wanted={
            "commit_sha": commit_sha,
            "ref": ref or "",
            "build_id": build_id,
            "build_url": build_url or "",
            "artifact_uri": artifact_uri,
            "artifact_sha256": artifact_sha256,
            "framework": framework or "",
            "params": params or {},
            "metrics": metrics or {},
            "env_lock_sha256": env_lock_sha256 or "",
            "model_card": model_card or {},
        },
        version=version,
        dataset_keys=dataset_keys,
        reading=reading,
        request=request,
    )


def _digest_mismatch(uri: str, registered: str, reading: ArtifactReading) -> Conflict:
    return Conflict(
        f"The {reading.store} store holds {uri} with sha256 {reading.observed_sha256}, not "
        f"{registered}: the artifact is not the build CI describes. Upload the build's "
        "artifact again, or register it with the digest its store holds.",
        code="artifact_digest_mismatch",
    )


def _artifact_check_save(
    model_version: ModelVersion, reading: ArtifactReading, purpose: str
) -> ArtifactCheck:
    check = ArtifactCheck(
        model_version=model_version,
        purpose=purpose,
        outcome=reading.outcome,
        store=reading.store[:20],
        observed_sha256=reading.observed_sha256,
        detail=reading.detail[:500],
        checked_at=timezone.now(),
    )
    check.full_clean()
    check.save()
    return check


def _check_data(check: ArtifactCheck) -> dict[str, Any]:
    return {
        "outcome": check.outcome,
        "store": check.store,
        "observed_sha256": check.observed_sha256,
        "detail": check.detail,
    }


def model_version_artifact_check(
    *, actor: Actor, model_version: ModelVersion, purpose: str, request: Any = None
) -> ArtifactCheck:
    """Look at the version's artifact in its store again (deployment start) and record what it
    holds now. The store is read before the transaction opens; a mismatch is recorded, not
    raised: the gate refuses it (`artifact_changed`)."""
    reading = artifact_read(
        model_version.artifact_uri, expected_sha256=model_version.artifact_sha256
    )
    with transaction.atomic():
        check = _artifact_check_save(model_version, reading, purpose)
        audit_record(
            actor=actor,
            action=AuditAction.MODEL_VERSION_ARTIFACT_CHECKED,
            target=model_version,
            data={
                "model": model_version.model.name,
                "version": model_version.version,
                "artifact_uri": model_version.artifact_uri,
                "artifact_sha256": model_version.artifact_sha256,
                "purpose": purpose,
                **_check_data(check),
            },
            request=request,
        )
    return check


# Registrations of one artifact digest take turns on this advisory lock (PostgreSQL), whatever
# the model: the second of two racing builds then sees the first.
DIGEST_LOCK_NAMESPACE = 4711


def _refuse_another_build_of(artifact_sha256: str, commit_sha: str, build_id: str) -> None:
    """Rule 1: one artifact digest is one build. The digest registered again (under any model)
    with another commit or CI build is refused, so no build inherits another's soak."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)",
                [DIGEST_LOCK_NAMESPACE, int(artifact_sha256[:7], 16)],
            )
    other = (
        ModelVersion.objects.select_related("model")
        .filter(artifact_sha256=artifact_sha256)
        .exclude(commit_sha=commit_sha, build_id=build_id)
        .order_by("created_at", "pk")
        .first()
    )
    if other is not None:
        raise Conflict(
            f"Artifact digest {artifact_sha256[:12]}… is registered already as {other} "
            f"(commit {other.commit_sha[:10]}, build {other.build_id}); one digest is one "
            f"build, so it cannot be registered with another commit or build. Deploy {other}, "
            "or register a new build with its own artifact.",
            code="artifact_already_registered",
        )


@transaction.atomic
def _model_version_insert(
    *,
    actor: Actor,
    model: RegisteredModel,
    repository_url: str,
    wanted: dict[str, Any],
    version: str,
    dataset_keys: list[tuple[str, str]],
    reading: ArtifactReading,
    request: Any,
) -> tuple[ModelVersion, bool]:
    # The model row is the lock: registrations of one model (and version numbering) take turns.
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    dataset_rows = _known_datasets(dataset_keys)
    repository, _ = repository_register(actor=actor, url=repository_url, request=request)

    if version:
        existing = ModelVersion.objects.filter(model=model, version=version).first()
    else:
        existing = ModelVersion.objects.filter(
            model=model, commit_sha=wanted["commit_sha"], build_id=wanted["build_id"]
        ).first()
    if existing is not None:
        changed = _differences(existing, {**wanted, "repository_id": repository.pk})
        if sorted(existing.datasets.values_list("name", "version")) != dataset_keys:
            changed.append("datasets")
        if changed:
            raise Conflict(
                f"{model.name} version {existing.version} is registered already with a "
                f"different {', '.join(f.removesuffix('_id') for f in sorted(changed))}. A "
                "registered version never changes: register a new version.",
                code="model_version_conflict",
            )
        return existing, False

    _refuse_another_build_of(wanted["artifact_sha256"], wanted["commit_sha"], wanted["build_id"])
    who = describe_actor(actor)
    model_version = ModelVersion(
        model=model,
        version=version or _next_version_number(model),
        repository=repository,
        created_by_user=actor if who.kind == ActorKind.USER else None,
        created_by_service=actor if who.kind == ActorKind.SERVICE else None,
        created_by_name=who.name,
        **wanted,
    )
    model_version.full_clean()
    model_version.save()
    number = _plain_number(model_version.version)
    if number is not None and number > model.highest_version_number:
        RegisteredModel.objects.filter(pk=model.pk).update(highest_version_number=number)
    model_version.datasets.add(*dataset_rows)
    check = _artifact_check_save(model_version, reading, ArtifactCheckPurpose.REGISTRATION)
    audit_record(
        actor=actor,
        action=AuditAction.MODEL_VERSION_REGISTERED,
        target=model_version,
        data={
            "model": model.name,
            "version": model_version.version,
            "repository": repository.url,
            **wanted,
            "datasets": [f"{name}@{number}" for name, number in dataset_keys],
            "artifact_check": _check_data(check),
        },
        request=request,
    )
    if linked_to_gitlab(repository):
        enqueue_on_commit(refresh_pipeline_status, repository.pk, model_version.commit_sha)
    return model_version, True
