"""A real MLflow tracking server for the import tests (integrations/mlflow_source.py): `mlflow
server` from requirements-dev.txt in a subprocess, with a SQLite backend store and a local
artifact root that it serves itself (`mlflow-artifacts:`), on a free port; started once per test
session. `MlflowWorld` fills it the way a training pipeline does, with the mlflow client."""

import json
import os
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path

import pytest
import requests

from tests.artifact_stores import free_port

STARTUP_SECONDS = 300


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_TRACKING_URI": ""},
    )
    deadline = time.monotonic() + STARTUP_SECONDS
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(root / 'server.log').read_text()}")
            try:
                if requests.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not answer /health in {STARTUP_SECONDS}s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


class MlflowWorld:
    """One test's corner of the shared server: a registered model of its own name (tagged with
    the Gatehouse model it is), its runs and versions."""

    def __init__(self, url: str, scratch: Path, model: str, repository: str):
        from mlflow import MlflowClient

        self.url = url
        self.scratch = scratch
        self.client = MlflowClient(tracking_uri=url, registry_uri=url)
        self.model = model
        self.name = f"{model} {uuid.uuid4().hex[:8]}"
        self.repository = repository
        self.experiment = self.client.create_experiment(self.name)
        self.client.create_registered_model(self.name, tags={"gatehouse.model": model})

    def model_directory(self, weights: bytes) -> Path:
        """The model as `mlflow.<flavor>.log_model` leaves it: MLmodel beside the weights."""
        directory = self.scratch / uuid.uuid4().hex
        (directory / "data").mkdir(parents=True)
        (directory / "MLmodel").write_text("flavors:\n  python_function:\n    loader: x\n")
        (directory / "data" / "model.pkl").write_bytes(weights)
        return directory

    def train(
        self,
        *,
        commit: str,
        weights: bytes,
        metrics: dict | None = None,
        dataset_sha256: str = "",
    ) -> tuple[str, Path]:
        """A finished run from `commit`: its metrics, a parameter, a training dataset (with its
        content sha256 in the profile) and the model artifact. Returns the run id and the model
        directory it logged."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        run = self.client.create_run(
            self.experiment,
            tags={
                "mlflow.source.git.commit": commit,
                "mlflow.source.git.repoURL": self.repository,
                "mlflow.source.git.branch": "main",
            },
        )
        run_id = run.info.run_id
        for key, value in (metrics or {"auc": 0.91, "ks": 0.42}).items():
            self.client.log_metric(run_id, key, value)
        self.client.log_param(run_id, "max_depth", "6")
        if dataset_sha256:
            dataset = Dataset(
                name="loans-2026q3",
                digest=dataset_sha256[:10],
                source_type="s3",
                source=json.dumps({"uri": "s3://bank-data/loans/2026q3.parquet"}),
                schema=None,
                profile=json.dumps({"sha256": dataset_sha256, "num_rows": 120000}),
            )
            self.client.log_inputs(
                run_id,
                datasets=[
                    DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])
                ],
            )
        directory = self.model_directory(weights)
        self.client.log_artifacts(run_id, str(directory), "model")
        self.client.set_terminated(run_id)
        return run_id, directory

    def register(self, run_id: str, *, path: str = "model", digest_tag: str = "") -> str:
        """A version from the run's artifact at `path`, with the `gatehouse.artifact_sha256`
        tag a pipeline may write."""
        source = f"{self.client.get_run(run_id).info.artifact_uri}/{path}"
        tags = {"gatehouse.artifact_sha256": digest_tag} if digest_tag else None
        version = self.client.create_model_version(self.name, source, run_id=run_id, tags=tags)
        return str(version.version)

    def set_alias(self, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(self.name, alias, version)

    def set_stage(self, stage: str, version: str) -> None:
        """Stages are deprecated in MLflow, and still what many banks' registries use."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            self.client.transition_model_version_stage(self.name, version, stage)
