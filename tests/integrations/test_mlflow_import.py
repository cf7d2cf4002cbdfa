"""Issue 20: the MLflow Model Registry as a source of versions, against a real tracking server
(tests/integrations/mlflow_server.py) filled by the mlflow client as a training pipeline fills
it, with commits from a real git repository whose mirror the registry checks."""

import hashlib
import logging
import subprocess
import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.actions import AuditAction
from audit.models import AuditEvent
from integrations.mlflow_source import MlflowUnreachable, mlflow_import
from integrations.models import MlflowPromotion, MlflowVersion
from integrations.tasks import import_from_mlflow
from registry import services as registry
from registry.builders import REPOSITORY_URL, repository_with_mirror, training_commits
from registry.models import ArtifactOutcome, DatasetVersion, ModelVersion
from releases.models import UnauthorisedChange
from releases.services.deployments import deployment_record_result, deployment_start
from tests.artifact_stores import free_port
from tests.integrations.mlflow_server import MlflowWorld

pytestmark = pytest.mark.django_db

DATASET_SHA256 = hashlib.sha256(b"loans 2026q3").hexdigest()


@pytest.fixture
def commits(org, tmp_path) -> list[str]:
    """Two commits of the model's repository, whose bare mirror the registry reads."""
    return repository_with_mirror(tmp_path / "source", training_commits(2))


@pytest.fixture
def mlflow(mlflow_server, settings, tmp_path, commits, envs) -> MlflowWorld:
    """The portal connected to the server as docs/operations.md says: tracking URI, the mlflow
    artifact store read for digests, the `champion` alias and the Production stage standing for
    dev (the environment that needs no change request, so a test deploys there directly)."""
    # One Gatehouse model per test: the server, shared by the session, keeps the others' models.
    model = f"churn-score-{uuid.uuid4().hex[:8]}"
    registry.model_register(actor=None, name=model, owner_team="data-science")
    settings.GATEHOUSE_MLFLOW_TRACKING_URI = mlflow_server
    settings.GATEHOUSE_ARTIFACT_STORES = [*settings.GATEHOUSE_ARTIFACT_STORES, "mlflow"]
    settings.GATEHOUSE_MLFLOW_PROMOTIONS = ["alias:champion=dev", "stage:Production=dev"]
    return MlflowWorld(mlflow_server, tmp_path / "models", model, REPOSITORY_URL)


def sha256sum_tree(directory) -> str:
    """The digest rule as docs/operations.md gives it to pipelines, run by the shell."""
    line = (
        "(cd \"$0\" && find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' sha256sum)"
        " | sha256sum"
    )
    result = subprocess.run(
        ["/bin/bash", "-c", line, str(directory)], capture_output=True, text=True, check=True
    )
    return result.stdout.split()[0]


def events_since(seq: int) -> list[str]:
    events = AuditEvent.objects.filter(seq__gt=seq).order_by("seq")
    return list(events.values_list("action", flat=True))


def last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def test_the_import_registers_the_version_with_commit_digest_datasets_and_metrics(mlflow, commits):
    run_id, directory = mlflow.train(
        commit=commits[0], weights=b"gradient boosted trees v1", dataset_sha256=DATASET_SHA256
    )
    number = mlflow.register(run_id)
    before = last_seq()

    report = mlflow_import()

    assert report.imported == [f"{mlflow.name} v{number}"] and report.refused == []
    version = ModelVersion.objects.get(model__name=mlflow.model, version=number)
    assert version.commit_sha == commits[0]
    assert version.repository.url == REPOSITORY_URL
    assert version.ref == "main"
    assert version.build_id == f"mlflow-run:{run_id}"
    assert version.artifact_uri.startswith("mlflow-artifacts:/") and run_id in version.artifact_uri
    assert version.artifact_sha256 == sha256sum_tree(directory)
    assert version.latest_artifact_check.outcome == ArtifactOutcome.VERIFIED
    assert version.metrics == {"auc": 0.91, "ks": 0.42}
    assert version.params == {"max_depth": "6"}
    dataset = version.datasets.get()
    assert (dataset.name, dataset.version, dataset.sha256, dataset.rows) == (
        "loans-2026q3",
        DATASET_SHA256[:10],
        DATASET_SHA256,
        120000,
    )
    assert dataset.uri == "s3://bank-data/loans/2026q3.parquet"
    link = version.mlflow_source
    assert (link.tracking_uri, link.mlflow_model, link.run_id) == (mlflow.url, mlflow.name, run_id)
    assert link.url.startswith(f"{mlflow.url}/#/models/")
    assert events_since(before) == [
        AuditAction.DATASET_VERSION_REGISTERED,
        AuditAction.MODEL_VERSION_REGISTERED,
        AuditAction.MLFLOW_VERSION_IMPORTED,
    ]


def test_a_second_run_creates_nothing_and_writes_no_event(mlflow, commits):
    run_id, _ = mlflow.train(commit=commits[0], weights=b"v1", dataset_sha256=DATASET_SHA256)
    mlflow.register(run_id)
    mlflow_import()
    counts = (ModelVersion.objects.count(), DatasetVersion.objects.count())
    before = last_seq()

    out = StringIO()
    call_command("mlflow_import", stdout=out)

    assert out.getvalue().startswith("0 version(s) imported, 1 already linked, 0 refused")
    assert (ModelVersion.objects.count(), DatasetVersion.objects.count()) == counts
    assert MlflowVersion.objects.count() == 1
    assert events_since(before) == []


@pytest.mark.parametrize(
    "move", [("alias", "champion"), ("stage", "Production")], ids=["alias", "stage"]
)
def test_a_promotion_made_in_mlflow_outside_gatehouse_is_flagged_once(
    mlflow, commits, envs, ci, move
):
    kind, name = move
    promote = mlflow.set_alias if kind == "alias" else mlflow.set_stage
    first = mlflow.register(mlflow.train(commit=commits[0], weights=b"v1")[0])
    mlflow_import()
    live, _ = deployment_start(
        actor=ci.account,
        environment=envs["dev"],
        model_version=ModelVersion.objects.get(model__name=mlflow.model, version=first),
    )
    live = deployment_record_result(actor=ci.account, deployment=live, status="succeeded")
    promote(name, first)
    mlflow_import()
    assert MlflowPromotion.objects.get().authorised
    assert not UnauthorisedChange.objects.exists()

    second = mlflow.register(mlflow.train(commit=commits[1], weights=b"v2")[0])
    promote(name, second)
    before = last_seq()
    report = mlflow_import()

    flag = UnauthorisedChange.objects.get()
    imported = ModelVersion.objects.get(model__name=mlflow.model, version=second)
    assert (flag.deployment, flag.reported_sha256) == (live, imported.artifact_sha256)
    assert flag.expected_sha256 == live.model_version.artifact_sha256
    assert flag.observed_by == (
        f"MLflow {mlflow.url}: {mlflow.name} {kind}:{name} moved to version {second}"
    )
    observed = MlflowPromotion.objects.filter(label=f"{kind}:{name}").first()
    assert (observed.mlflow_version, observed.authorised, observed.flag) == (second, False, flag)
    assert f"{kind}:{name} → v{second} (dev: NOT live there: flagged)" in report.promotions[0]
    assert events_since(before) == [
        AuditAction.MODEL_VERSION_REGISTERED,
        AuditAction.MLFLOW_VERSION_IMPORTED,
        AuditAction.DEPLOYMENT_UNAUTHORISED_CHANGE_DETECTED,
        AuditAction.MLFLOW_PROMOTION_UNAUTHORISED,
    ]

    before = last_seq()
    again = mlflow_import()
    assert again.promotions == [] and UnauthorisedChange.objects.count() == 1
    assert events_since(before) == []


def test_a_promotion_to_the_live_version_is_not_flagged(mlflow, commits, envs, ci):
    first = mlflow.register(mlflow.train(commit=commits[0], weights=b"v1")[0])
    mlflow_import()
    version = ModelVersion.objects.get(model__name=mlflow.model, version=first)
    deployment, _ = deployment_start(
        actor=ci.account, environment=envs["dev"], model_version=version
    )
    deployment_record_result(actor=ci.account, deployment=deployment, status="succeeded")
    mlflow.set_alias("champion", first)
    before = last_seq()

    report = mlflow_import()

    observed = MlflowPromotion.objects.get()
    assert (observed.authorised, observed.flag, observed.model_version) == (True, None, version)
    assert report.promotions == [f"{mlflow.name} alias:champion → v{first} (dev: live there)"]
    assert not UnauthorisedChange.objects.exists()
    assert events_since(before) == []


def test_a_commit_the_repository_does_not_have_is_refused_and_reported(mlflow):
    unknown = hashlib.sha1(b"a commit nobody pushed").hexdigest()  # noqa: S324 - a git id
    number = mlflow.register(
        mlflow.train(commit=unknown, weights=b"v1", dataset_sha256=DATASET_SHA256)[0]
    )
    before = last_seq()

    out = StringIO()
    call_command("mlflow_import", stdout=out)

    assert f"refused: {mlflow.name} v{number} [unknown_commit] Commit {unknown}" in out.getvalue()
    # Nothing partial: the dataset registered before the refusal went back with it.
    assert not ModelVersion.objects.filter(model__name=mlflow.model).exists()
    assert not DatasetVersion.objects.exists() and not MlflowVersion.objects.exists()
    assert events_since(before) == []
    # Refused again on the next run: a refusal is reported, never remembered as done.
    assert mlflow_import().refused[0][1] == "unknown_commit"


def test_the_pipelines_digest_tag_stands_in_for_an_unreadable_artifact_and_must_agree(
    mlflow, commits
):
    run_id, directory = mlflow.train(commit=commits[0], weights=b"v1")
    told = hashlib.sha256(b"what the pipeline says").hexdigest()
    wrong = mlflow.register(run_id, digest_tag=told)
    unreadable = mlflow.register(run_id, path="not-logged", digest_tag=told)

    report = mlflow_import()

    refused = {name: (code, detail) for name, code, detail in report.refused}
    code, detail = refused[f"{mlflow.name} v{wrong}"]
    assert code == "digest_mismatch" and sha256sum_tree(directory) in detail
    version = ModelVersion.objects.get(model__name=mlflow.model, version=unreadable)
    assert version.artifact_sha256 == told
    assert version.latest_artifact_check.outcome == ArtifactOutcome.UNVERIFIED


def test_an_mlflow_that_does_not_answer_writes_nothing_and_fails_loudly(settings, monkeypatch, org):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    settings.GATEHOUSE_MLFLOW_TRACKING_URI = f"http://127.0.0.1:{free_port()}"
    before = last_seq()

    with pytest.raises(MlflowUnreachable, match="did not answer"):
        mlflow_import()
    with pytest.raises(CommandError, match="Nothing was imported"):
        call_command("mlflow_import")

    assert events_since(before) == [] and not MlflowVersion.objects.exists()


def test_the_periodic_task_retries_an_mlflow_that_does_not_answer(
    settings, monkeypatch, org, caplog
):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    settings.GATEHOUSE_MLFLOW_TRACKING_URI = f"http://127.0.0.1:{free_port()}"

    with caplog.at_level(logging.ERROR, logger="gatehouse.mlflow"):
        result = import_from_mlflow.apply()

    assert result.failed() and isinstance(result.result, MlflowUnreachable)
    attempts = [r for r in caplog.records if r.name == "gatehouse.mlflow"]
    assert len(attempts) == 1 + import_from_mlflow.max_retries
    assert "did not answer" in attempts[-1].getMessage()


def test_the_periodic_task_does_nothing_while_mlflow_is_not_connected(settings, org):
    settings.GATEHOUSE_MLFLOW_TRACKING_URI = ""
    assert import_from_mlflow.apply().get() == 0
