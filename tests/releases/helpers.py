"""Builders for the change request tests (shared with tests/api): environments through the policy
services, model versions through the registry services, and real git repositories."""

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.utils import timezone
from git import Actor, Repo

from portal.models import Team
from registry import services as registry
from registry.models import ModelVersion
from releases.models import Environment
from releases.services import policy

REPOSITORY_URL = "https://gitlab.example.com/data-science/fraud-models"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - a made-up commit id


def make_environments(org: dict[str, Team]) -> dict[str, Environment]:
    """dev (no change request), test (peer review only), prod (peer review, then the three
    approval teams; soak 7 days in test; emergency allowed; retrospective 72 h)."""
    dev = policy.environment_create(actor=None, name="dev", rank=1)
    policy.environment_policy_change(
        actor=None,
        environment=dev,
        approval_teams=[],
        needs_change_request=False,
        needs_peer_review=False,
    )
    test = policy.environment_create(actor=None, name="test", rank=2)
    policy.environment_policy_change(actor=None, environment=test, approval_teams=[])
    prod = policy.environment_create(actor=None, name="prod", rank=3)
    policy.environment_policy_change(
        actor=None,
        environment=prod,
        approval_teams=[
            org["model-risk"],
            org["release-management"],
            org["platform-operations"],
        ],
        soak_source=test,
        soak_days=7,
    )
    return {"dev": dev, "test": test, "prod": prod}


def make_model_version(
    org: dict[str, Team],
    *,
    model: str = "fraud-detector",
    version: str = "1.0.0",
    commit_sha: str | None = None,
    mirror_path: str = "",
) -> ModelVersion:
    """Register a build through the registry's services (and a mirror, when given, first: the
    registry then checks the commit is in it)."""
    registry.model_register(actor=None, name=model, owner_team="data-science")
    repository, _ = registry.repository_register(actor=None, url=REPOSITORY_URL)
    if mirror_path:
        registry.repository_configure(
            actor=None,
            repository=repository,
            mirror_path=mirror_path,
            gitlab_url="",
            gitlab_project_id=None,
        )
    return registry.model_version_register(
        actor=None,
        model=model,
        version=version,
        repository=REPOSITORY_URL,
        commit_sha=commit_sha or sha1(f"{model} {version}"),
        build_id=f"build-{version}",
        build_url=f"https://ci.example.com/builds/{version}",
        artifact_uri=f"s3://models/{model}/{version}/model.pkl",
        artifact_sha256=digest(f"{model} {version}"),
        env_lock_sha256=digest("uv.lock"),
    )[0]


def window(days: int = 2, hours: int = 4) -> tuple[datetime, datetime]:
    start = timezone.now() + timedelta(days=days)
    return start, start + timedelta(hours=hours)


def change_fields(model_version: ModelVersion, environment: Environment, **overrides) -> dict:
    start, end = window()
    fields = {
        "model_version": model_version,
        "environment": environment,
        "title": f"Release {model_version}",
        "justification": "Better recall on card-not-present fraud.",
        "risk_impact": "Scores shift for 2% of transactions.",
        "test_evidence": "Backtest on October: recall +4 points.",
        "rollback_plan": "Roll back to the previous version.",
        "window_start": start,
        "window_end": end,
    }
    return {**fields, **overrides}


def grow_repository(
    path: Path, authors: list[tuple[str, str]], *, start: int = 0
) -> tuple[Repo, list[str]]:
    """A real repository with one commit per (name, email) in `authors`; shas oldest first."""
    repo = Repo(path) if (path / ".git").exists() else Repo.init(path, initial_branch="main")
    shas = []
    for index, (name, email) in enumerate(authors, start=start):
        (path / "train.py").write_text(f"EPOCHS = {index}\n")
        repo.index.add(["train.py"])
        when = datetime(2026, 11, 1, 9, tzinfo=UTC) + timedelta(hours=index)
        commit = repo.index.commit(
            f"Train step {index}",
            author=Actor(name, email),
            committer=Actor(name, email),
            author_date=when,
            commit_date=when,
        )
        shas.append(commit.hexsha)
    return repo, shas
