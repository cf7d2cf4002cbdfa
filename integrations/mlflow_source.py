"""The MLflow Model Registry as a source of versions (issue 20, rules 1 and 14).

An import reads every registered model of the tracking server at `GATEHOUSE_MLFLOW_TRACKING_URI`
whose Gatehouse name (its `gatehouse.model` tag, else its own name) is a Gatehouse model, and
registers each version it has not linked yet through `registry.services`, with the same rules
as a CI registration: the commit is the source run's `mlflow.source.git.commit` tag and must be
in the repository's mirror, the digest is read from the artifact (docs/operations.md, "MLflow"),
datasets and metrics come from the run. A version that breaks a rule is refused and reported,
never completed by guesswork. Then the aliases and stages named in `GATEHOUSE_MLFLOW_PROMOTIONS`
are compared with what is live in their environment: a move that put there a version Gatehouse
did not deploy raises the unauthorised change flag, once per move.

Everything is read from MLflow before anything is written, and each version is registered in one
transaction: an MLflow that stops answering midway leaves nothing half imported.
"""

import json
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from integrations.models import MlflowPromotion, MlflowVersion
from portal.exceptions import DomainError
from registry import services as registry
from registry.artifacts import SHA256_HEX, Unreadable, mlflow_artifact_sha256
from registry.models import RegisteredModel
from releases.models import Environment
from releases.selectors.live import live_deployment
from releases.services.deployments import unauthorised_change_raise

logger = logging.getLogger("gatehouse.mlflow")

# Tags a pipeline may set: on the MLflow registered model, the Gatehouse model it is and the
# repository its runs build from; on the version or its run, the artifact's digest.
MODEL_TAG = "gatehouse.model"
REPOSITORY_TAG = "gatehouse.repository"
DIGEST_TAG = "gatehouse.artifact_sha256"
COMMIT_TAG = "mlflow.source.git.commit"
REPOSITORY_URL_TAG = "mlflow.source.git.repoURL"
BRANCH_TAG = "mlflow.source.git.branch"
PAGE = 200


class MlflowUnreachable(Exception):
    """The tracking server did not answer; nothing was written. The task retries."""


@dataclass(frozen=True)
class Promotion:
    """An MLflow alias or stage that stands for a Gatehouse environment."""

    kind: str
    name: str
    environment: str

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"


def promotions_configured() -> list[Promotion]:
    """`GATEHOUSE_MLFLOW_PROMOTIONS`, read: `alias:champion=prod,stage:Production=prod`."""
    promotions = []
    for entry in settings.GATEHOUSE_MLFLOW_PROMOTIONS:
        label, _, environment = entry.partition("=")
        kind, _, name = label.strip().partition(":")
        if kind not in {"alias", "stage"} or not name or not environment.strip():
            raise ImproperlyConfigured(
                f"GATEHOUSE_MLFLOW_PROMOTIONS entry '{entry}' is not alias:NAME=ENV or "
                "stage:NAME=ENV."
            )
        promotions.append(Promotion(kind, name.strip(), environment.strip()))
    return promotions


Refusal = tuple[str, str]


@dataclass
class VersionFacts:
    """What MLflow says about one model version, read before anything is written."""

    mlflow_model: str
    mlflow_version: str
    model: str
    run_id: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    refusal: Refusal | None = None

    @property
    def name(self) -> str:
        return f"{self.mlflow_model} v{self.mlflow_version}"


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)
    unchanged: int = 0
    refused: list[tuple[str, str, str]] = field(default_factory=list)
    skipped_models: list[str] = field(default_factory=list)
    promotions: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [
            f"{len(self.imported)} version(s) imported, {self.unchanged} already linked, "
            f"{len(self.refused)} refused, {len(self.promotions)} promotion(s) observed."
        ]
        lines += [f"imported: {name}" for name in self.imported]
        lines += [f"refused: {name} [{code}] {detail}" for name, code, detail in self.refused]
        lines += [f"promotion: {line}" for line in self.promotions]
        lines += [
            f"skipped: {name} (no Gatehouse model of that name)" for name in self.skipped_models
        ]
        return lines


def _client(tracking_uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _pages(search, **arguments) -> list:
    found, token = [], None
    while True:
        page = search(max_results=PAGE, page_token=token, **arguments)
        found.extend(page)
        token = page.token
        if not token:
            return found


def _web_url(tracking_uri: str, path: str) -> str:
    return f"{tracking_uri}/#/{path}" if tracking_uri.startswith(("http://", "https://")) else ""


def _dataset(dataset_input: Any) -> dict[str, Any] | str:
    """A logged MLflow dataset as a Gatehouse dataset version: MLflow's name, its digest as the
    version, the source's URI, and the content sha256 (and row count) the pipeline put in the
    dataset's profile; MLflow's own digest is not a content sha256, so without one it is
    refused (the message says why)."""
    dataset = dataset_input.dataset
    try:
        profile = json.loads(dataset.profile or "{}")
        source = json.loads(dataset.source or "{}")
    except ValueError:
        profile, source = {}, {}
    sha256 = str(profile.get("sha256", "")).lower() if isinstance(profile, dict) else ""
    if not SHA256_HEX.match(sha256):
        return (
            f"dataset {dataset.name}@{dataset.digest} has no content sha256 in its profile "
            '({"sha256": …}), so its content is unknown'
        )
    uri = ""
    if isinstance(source, dict):
        uri = next((str(source[key]) for key in ("uri", "url", "path") if source.get(key)), "")
    rows = profile.get("num_rows")
    return {
        "name": dataset.name,
        "version": dataset.digest,
        "uri": uri or dataset.source or dataset.name,
        "sha256": sha256,
        "rows": rows if isinstance(rows, int) else None,
        "schema_sha256": "",
    }


def _artifact_digest(version: Any, run: Any, tracking_uri: str) -> tuple[str, Refusal | None]:
    """The digest rule (docs/operations.md, "MLflow"): the artifact as read through MLflow's
    artifact API; where it cannot be read, the `gatehouse.artifact_sha256` tag the pipeline
    wrote on the version or its run. Both present must agree."""
    written = (version.tags or {}).get(DIGEST_TAG) or run.data.tags.get(DIGEST_TAG, "")
    written = written.lower()
    try:
        read = mlflow_artifact_sha256(version.source, tracking_uri=tracking_uri)
    except Unreadable as unreadable:
        if SHA256_HEX.match(written):
            return written, None
        return "", (
            "no_digest",
            f"the artifact cannot be read ({unreadable}) and carries no {DIGEST_TAG} tag",
        )
    if written and written != read:
        return "", (
            "digest_mismatch",
            f"the artifact's sha256 is {read}, but {DIGEST_TAG} says {written}",
        )
    return read, None


def _version_facts(
    client: Any, tracking_uri: str, registered: Any, version: Any, model: str
) -> VersionFacts:
    from mlflow.exceptions import MlflowException

    facts = VersionFacts(registered.name, str(version.version), model, run_id=version.run_id or "")
    facts.url = _web_url(
        tracking_uri, f"models/{quote(registered.name)}/versions/{version.version}"
    )
    if not version.run_id:
        facts.refusal = ("no_source_run", "the version names no source run")
        return facts
    try:
        run = client.get_run(version.run_id)
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        facts.refusal = ("no_source_run", f"its run {version.run_id} is gone")
        return facts
    tags = run.data.tags
    commit = tags.get(COMMIT_TAG, "")
    repository = tags.get(REPOSITORY_URL_TAG) or (registered.tags or {}).get(REPOSITORY_TAG, "")
    if not commit:
        facts.refusal = ("no_commit", f"its run has no {COMMIT_TAG} tag")
        return facts
    if not repository:
        facts.refusal = (
            "no_repository",
            f"its run has no {REPOSITORY_URL_TAG} tag and the model no {REPOSITORY_TAG} tag",
        )
        return facts
    datasets = [_dataset(dataset_input) for dataset_input in run.inputs.dataset_inputs]
    unknown = [dataset for dataset in datasets if isinstance(dataset, str)]
    if unknown:
        facts.refusal = ("dataset_without_digest", "; ".join(unknown))
        return facts
    digest, facts.refusal = _artifact_digest(version, run, tracking_uri)
    if facts.refusal:
        return facts
    facts.datasets = datasets
    facts.fields = {
        "repository": repository,
        "commit_sha": commit,
        "ref": tags.get(BRANCH_TAG, ""),
        "build_id": f"mlflow-run:{run.info.run_id}",
        "build_url": _web_url(
            tracking_uri, f"experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
        ),
        "artifact_uri": version.source,
        "artifact_sha256": digest,
        "params": dict(run.data.params),
        "metrics": {k: v for k, v in run.data.metrics.items() if math.isfinite(v)},
    }
    return facts


@dataclass
class ModelReading:
    registered: Any
    model: RegisteredModel
    versions: list[Any]
    facts: dict[str, VersionFacts]


def _read(client: Any, tracking_uri: str, report: ImportReport) -> list[ModelReading]:
    """Everything the import needs from MLflow, for the versions not linked yet."""
    readings = []
    for registered in _pages(client.search_registered_models):
        name = (registered.tags or {}).get(MODEL_TAG, registered.name)
        model = RegisteredModel.objects.filter(name=name).first()
        if model is None:
            report.skipped_models.append(registered.name)
            continue
        if "'" in registered.name:
            # MLflow's filter language has no escape for it.
            report.refused.append((registered.name, "unsupported_name", "a quote in the name"))
            continue
        versions = _pages(client.search_model_versions, filter_string=f"name='{registered.name}'")
        linked = set(
            MlflowVersion.objects.filter(
                tracking_uri=tracking_uri, mlflow_model=registered.name
            ).values_list("mlflow_version", flat=True)
        )
        facts = {}
        for version in sorted(versions, key=lambda v: int(v.version)):
            if str(version.version) in linked:
                report.unchanged += 1
                continue
            facts[str(version.version)] = _version_facts(
                client, tracking_uri, registered, version, name
            )
        readings.append(ModelReading(registered, model, versions, facts))
    return readings


@transaction.atomic
def mlflow_version_import(
    *, actor: Any, tracking_uri: str, facts: VersionFacts, now: datetime
) -> MlflowVersion:
    """Register one MLflow version (its datasets first) through the registry services and link
    it back to MLflow, all or nothing. The registry's rules refuse it as they refuse CI."""
    for dataset in facts.datasets:
        registry.dataset_version_register(actor=actor, **dataset)
    model_version, _ = registry.model_version_register(
        actor=actor,
        model=facts.model,
        version=facts.mlflow_version,
        datasets=[{"name": d["name"], "version": d["version"]} for d in facts.datasets],
        **facts.fields,
    )
    link = MlflowVersion(
        tracking_uri=tracking_uri,
        mlflow_model=facts.mlflow_model,
        mlflow_version=facts.mlflow_version,
        run_id=facts.run_id,
        model_version=model_version,
        url=facts.url,
        imported_at=now,
    )
    link.full_clean()
    link.save()
    audit_record(
        actor=actor,
        action=AuditAction.MLFLOW_VERSION_IMPORTED,
        target=model_version,
        data={
            "tracking_uri": tracking_uri,
            "mlflow_model": facts.mlflow_model,
            "mlflow_version": facts.mlflow_version,
            "run_id": facts.run_id,
            "model": facts.model,
            "version": model_version.version,
            "url": facts.url,
        },
    )
    return link


def _last_observed(tracking_uri: str, mlflow_model: str, label: str) -> MlflowPromotion | None:
    return MlflowPromotion.objects.filter(
        tracking_uri=tracking_uri, mlflow_model=mlflow_model, label=label
    ).first()


@transaction.atomic
def mlflow_promotion_observe(
    *,
    actor: Any,
    tracking_uri: str,
    mlflow_model: str,
    model: RegisteredModel,
    promotion: Promotion,
    environment: Environment,
    mlflow_version: str,
    artifact_sha256: str,
    now: datetime,
) -> MlflowPromotion | None:
    """Rule 14 for MLflow: `promotion` (an alias or stage standing for `environment`) now points
    at `mlflow_version`. When that is not the build live there, the live deployment is flagged
    as changed without authorisation and the move is audited; a move already observed is not
    observed again (returns None)."""
    RegisteredModel.objects.select_for_update().filter(pk=model.pk).values_list("pk").first()
    last = _last_observed(tracking_uri, mlflow_model, promotion.label)
    if last is not None and last.mlflow_version == mlflow_version:
        return None
    link = (
        MlflowVersion.objects.select_related("model_version")
        .filter(tracking_uri=tracking_uri, mlflow_model=mlflow_model, mlflow_version=mlflow_version)
        .first()
    )
    model_version = link.model_version if link else None
    digest = model_version.artifact_sha256 if model_version else artifact_sha256
    live = live_deployment(environment=environment, model=model, at=now)
    authorised = bool(live and digest and live.model_version.artifact_sha256 == digest)
    flag = None
    if not authorised and live and digest:
        flag = unauthorised_change_raise(
            actor=actor,
            deployment=live,
            reported_sha256=digest,
            now=now,
            observed_by=(
                f"MLflow {tracking_uri}: {mlflow_model} {promotion.label} moved to version "
                f"{mlflow_version}"
            ),
        )
    observed = MlflowPromotion(
        tracking_uri=tracking_uri,
        mlflow_model=mlflow_model,
        label=promotion.label,
        mlflow_version=mlflow_version,
        environment=environment,
        model_version=model_version,
        authorised=authorised,
        flag=flag,
        observed_at=now,
    )
    observed.full_clean()
    observed.save()
    if not authorised:
        audit_record(
            actor=actor,
            action=AuditAction.MLFLOW_PROMOTION_UNAUTHORISED,
            target=observed,
            environment=environment,
            data={
                "tracking_uri": tracking_uri,
                "mlflow_model": mlflow_model,
                "label": promotion.label,
                "mlflow_version": mlflow_version,
                "model": model.name,
                "version": model_version.version if model_version else None,
                "artifact_sha256": digest,
                "live_sha256": live.model_version.artifact_sha256 if live else None,
                "flag": flag.pk if flag else None,
            },
        )
    return observed


def _pointed_at(reading: ModelReading, promotion: Promotion) -> str:
    if promotion.kind == "alias":
        return str((reading.registered.aliases or {}).get(promotion.name, ""))
    in_stage = [int(v.version) for v in reading.versions if v.current_stage == promotion.name]
    return str(max(in_stage)) if in_stage else ""


def _promotion_environments() -> list[tuple[Promotion, Environment]]:
    """The configured promotions with their environments; checked before anything is read."""
    promotions = promotions_configured()
    environments = {
        e.name: e for e in Environment.objects.filter(name__in={p.environment for p in promotions})
    }
    missing = sorted({p.environment for p in promotions} - set(environments))
    if missing:
        raise ImproperlyConfigured(
            f"GATEHOUSE_MLFLOW_PROMOTIONS names environment(s) {', '.join(missing)}, which do "
            "not exist."
        )
    return [(promotion, environments[promotion.environment]) for promotion in promotions]


def _observe_promotions(
    tracking_uri: str,
    promotions: list[tuple[Promotion, Environment]],
    readings: list[ModelReading],
    report: ImportReport,
    now: datetime,
) -> None:
    for promotion, environment in promotions:
        for reading in readings:
            version = _pointed_at(reading, promotion)
            if not version:
                continue
            facts = reading.facts.get(version)
            observed = mlflow_promotion_observe(
                actor=None,
                tracking_uri=tracking_uri,
                mlflow_model=reading.registered.name,
                model=reading.model,
                promotion=promotion,
                environment=environment,
                mlflow_version=version,
                artifact_sha256=facts.fields.get("artifact_sha256", "") if facts else "",
                now=now,
            )
            if observed is not None:
                verdict = "live there" if observed.authorised else "NOT live there: flagged"
                report.promotions.append(
                    f"{reading.registered.name} {promotion.label} → v{version} "
                    f"({environment.name}: {verdict})"
                )


def mlflow_import(*, tracking_uri: str = "", now: datetime | None = None) -> ImportReport:
    """One import run: read MLflow, register the new versions, observe the promotions. Raises
    `MlflowUnreachable` when the server does not answer while it is being read."""
    from mlflow.exceptions import MlflowException

    tracking_uri = (tracking_uri or settings.GATEHOUSE_MLFLOW_TRACKING_URI).rstrip("/")
    if not tracking_uri:
        raise ImproperlyConfigured("GATEHOUSE_MLFLOW_TRACKING_URI is not set.")
    now = now or timezone.now()
    promotions = _promotion_environments()
    report = ImportReport()
    try:
        readings = _read(_client(tracking_uri), tracking_uri, report)
    except (MlflowException, requests.RequestException, OSError) as error:
        logger.error("MLflow at %s did not answer: %s", tracking_uri, error)
        raise MlflowUnreachable(f"MLflow at {tracking_uri} did not answer: {error}") from error
    for reading in readings:
        for facts in reading.facts.values():
            if facts.refusal is None:
                try:
                    mlflow_version_import(
                        actor=None, tracking_uri=tracking_uri, facts=facts, now=now
                    )
                except IntegrityError:
                    # Another run (the command beside the task) linked it first.
                    report.unchanged += 1
                    continue
                except DomainError as refused:
                    facts.refusal = (refused.code, str(refused))
                except ValidationError as invalid:
                    facts.refusal = ("invalid", "; ".join(invalid.messages))
                else:
                    report.imported.append(facts.name)
                    continue
            code, detail = facts.refusal
            report.refused.append((facts.name, code, detail))
            logger.warning("MLflow %s refused [%s]: %s", facts.name, code, detail)
    _observe_promotions(tracking_uri, promotions, readings, report, now)
    return report
