"""Payloads and real git repositories for the registry tests (shared with tests/api)."""

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from git import Actor, Repo

from registry import services

REPOSITORY_URL = "https://gitlab.example.com/data-science/credit-models"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - a made-up commit id


def dataset_payload(**overrides) -> dict:
    payload = {
        "name": "loans",
        "version": "2026-11-01",
        "uri": "s3://data/loans/2026-11-01.parquet",
        "sha256": digest("loans 2026-11-01"),
        "rows": 120000,
        "schema_sha256": digest("loans schema v3"),
    }
    return {**payload, **overrides}


def model_payload(**overrides) -> dict:
    payload = {
        "name": "credit-scoring",
        "owner_team": "data-science",
        "description": "Probability of default for retail loans.",
        "risk_tier": 1,
    }
    return {**payload, **overrides}


def version_payload(**overrides) -> dict:
    payload = {
        "version": "1.0.0",
        "repository": REPOSITORY_URL,
        "commit_sha": sha1("commit one"),
        "ref": "main",
        "build_id": "4711",
        "build_url": "https://gitlab.example.com/data-science/credit-models/-/pipelines/4711",
        "artifact_uri": "s3://models/credit-scoring/1.0.0/model.pkl",
        "artifact_sha256": digest("artifact 1.0.0"),
        "framework": "scikit-learn 1.7",
        "params": {"max_depth": 6},
        "metrics": {"auc": 0.81},
        "datasets": [{"name": "loans", "version": "2026-11-01"}],
        "env_lock_sha256": digest("uv.lock"),
    }
    return {**payload, **overrides}


def register_dataset(**overrides):
    return services.dataset_version_register(actor=None, **dataset_payload(**overrides))[0]


def register_model(**overrides):
    return services.model_register(actor=None, **model_payload(**overrides))[0]


def register_version(model: str = "credit-scoring", **overrides):
    return services.model_version_register(actor=None, model=model, **version_payload(**overrides))[
        0
    ]


COMMIT_AUTHORS = [
    ("Rhea Quinn", "rhea@bank.example"),
    ("Per Eriksen", "per@bank.example"),
    ("Mia Chen", "mia@bank.example"),
]


def grow_repository(path: Path, count: int, *, start: int = 0) -> tuple[Repo, list[str]]:
    """A real working repository with `count` more commits by different authors."""
    repo = Repo(path) if (path / ".git").exists() else Repo.init(path, initial_branch="main")
    shas = []
    for index in range(start, start + count):
        name, email = COMMIT_AUTHORS[index % len(COMMIT_AUTHORS)]
        (path / "train.py").write_text(f"EPOCHS = {index}\n")
        repo.index.add(["train.py"])
        when = datetime(2026, 11, 1, 9, tzinfo=UTC) + timedelta(hours=index)
        commit = repo.index.commit(
            f"Train step {index}\n\nLonger explanation of step {index}.",
            author=Actor(name, email),
            committer=Actor(name, email),
            author_date=when,
            commit_date=when,
        )
        shas.append(commit.hexsha)
    return repo, shas


def mirror_of(source: Path, path: Path) -> Repo:
    return Repo.clone_from(str(source), str(path), mirror=True)
