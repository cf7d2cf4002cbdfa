"""Builders of registry records, shared by the demo, the benchmarks and the tests: made-up digests
and commit ids, real git repositories grown with GitPython, and builds registered through
`registry.services` as CI registers them (so every record has its audit event).

Commits carry fixed authors and dates, so the same commits get the same SHAs, and a commit whose
subject the history already holds is not made again: growing a repository twice changes nothing.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from git import Actor, Repo

from registry import services
from registry.models import ModelVersion, RegisteredModel, Repository

REPOSITORY_URL = "https://git.example.com/data-science/models"
AUTHORS = [
    Actor("Rhea Quinn", "rhea@bank.example"),
    Actor("Per Eriksen", "per@bank.example"),
    Actor("Mia Chen", "mia@bank.example"),
]


def digest(text: str) -> str:
    """A made-up sha256 (artifact, dataset, lock file), the same for the same text."""
    return hashlib.sha256(text.encode()).hexdigest()


def commit_id(text: str) -> str:
    """A made-up 40-hex commit id, the same for the same text."""
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class Commit:
    author: Actor
    message: str
    when: datetime
    path: str = "train.py"
    content: str = ""


def training_commits(count: int, *, authors: list[Actor] = AUTHORS, start: int = 0) -> list[Commit]:
    """`count` commits "Train step N" to train.py, by `authors` in turn, an hour apart from
    2026-11-01 09:00 UTC; `start` continues a series."""
    first = datetime(2026, 11, 1, 9, tzinfo=UTC)
    return [
        Commit(
            author=authors[index % len(authors)],
            message=f"Train step {index}\n\nLonger explanation of step {index}.",
            when=first + timedelta(hours=index),
            content=f"EPOCHS = {index}\n",
        )
        for index in range(start, start + count)
    ]


def repository_grow(path: Path, commits: Iterable[Commit]) -> tuple[Repo, list[str]]:
    """The working repository at `path` (made when missing) with `commits` on `main`; returns it
    and the commits' SHAs in the order given."""
    repo = Repo(path) if (path / ".git").exists() else Repo.init(path, initial_branch="main")
    known = {c.summary: c.hexsha for c in repo.iter_commits()} if repo.head.is_valid() else {}
    shas = []
    for commit in commits:
        subject = commit.message.splitlines()[0]
        if subject not in known:
            target = path / commit.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(commit.content or f"# {subject}\n")
            repo.index.add([commit.path])
            known[subject] = repo.index.commit(
                commit.message,
                author=commit.author,
                committer=commit.author,
                author_date=commit.when,
                commit_date=commit.when,
            ).hexsha
        shas.append(known[subject])
    return repo, shas


def repository_mirrored(url: str, mirror_path: str) -> Repository:
    """The repository at `url` with its mirror at `mirror_path`: the registry then checks that
    every registered commit is in it."""
    repository, _ = services.repository_register(actor=None, url=url)
    return services.repository_configure(
        actor=None,
        repository=repository,
        mirror_path=mirror_path,
        gitlab_url="",
        gitlab_project_id=None,
    )


def repository_with_mirror(
    path: Path, commits: Iterable[Commit], *, url: str = REPOSITORY_URL
) -> list[str]:
    """`repository_grow` at `path`, then a bare clone beside it (`<path>.git`) registered as the
    mirror of `url`; returns the commits' SHAs."""
    repo, shas = repository_grow(path, commits)
    mirror = path.with_suffix(".git")
    repo.clone(str(mirror), bare=True)
    repository_mirrored(url, str(mirror))
    return shas


def build_register(
    model: str,
    version: str,
    *,
    actor=None,
    owner_team: str = "data-science",
    repository: str = REPOSITORY_URL,
    **fields,
) -> ModelVersion:
    """Register `model` (when it is new) and one build of it, as CI does: the commit, build,
    artifact and environment lock are made up from the model and version unless `fields` name
    them."""
    if not RegisteredModel.objects.filter(name=model).exists():
        services.model_register(actor=None, name=model, owner_team=owner_team)
    build = {
        "commit_sha": commit_id(f"{model}{version}"),
        "build_id": f"build-{model}-{version}",
        "artifact_uri": f"s3://models/{model}/{version}.tar.gz",
        "artifact_sha256": digest(f"{model}:{version}"),
        "env_lock_sha256": digest("uv.lock"),
        **fields,
    }
    return services.model_version_register(
        actor=actor, model=model, version=version, repository=repository, **build
    )[0]
