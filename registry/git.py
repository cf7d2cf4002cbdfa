"""Git through GitPython, on a repository's local bare mirror.

The portal never reads a remote directly when it answers a request: it reads the mirror an
administrator configured (`Repository.mirror_path`, relative paths under `settings.VAR_DIR`), and
`fetch_mirrors` (a management command and a Celery task) keeps the mirrors current.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from git import Commit, GitCommandError, InvalidGitRepositoryError, NoSuchPathError, Repo

from portal.exceptions import NotFound
from registry.models import Repository

logger = logging.getLogger(__name__)

# A fetch that hangs (network, a prompt for credentials) must not hold a worker for ever.
FETCH_TIMEOUT_SECONDS = 300
NO_PROMPT = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    subject: str
    message: str
    author_name: str
    author_email: str
    authored_at: datetime

    @property
    def short_sha(self) -> str:
        return self.sha[:10]


@dataclass(frozen=True)
class MirrorFetch:
    repository: Repository
    ok: bool
    detail: str


def mirror_path(repository: Repository) -> Path | None:
    if not repository.mirror_path:
        return None
    path = Path(repository.mirror_path)
    return path if path.is_absolute() else Path(settings.VAR_DIR) / path


def open_mirror(repository: Repository) -> Repo | None:
    """The mirror as a GitPython repository, or None when there is none (yet)."""
    path = mirror_path(repository)
    if path is None:
        return None
    try:
        return Repo(path)
    except (InvalidGitRepositoryError, NoSuchPathError):
        return None


def _info(commit: Commit) -> CommitInfo:
    message = commit.message if isinstance(commit.message, str) else commit.message.decode()
    return CommitInfo(
        sha=commit.hexsha,
        subject=message.strip().splitlines()[0] if message.strip() else "",
        message=message.strip(),
        author_name=commit.author.name or "",
        author_email=commit.author.email or "",
        authored_at=commit.authored_datetime,
    )


def _commit(repo: Repo, sha: str) -> Commit | None:
    try:
        repo.git.cat_file("-e", f"{sha}^{{commit}}")
    except GitCommandError:
        return None
    return repo.commit(sha)


def commit_exists(repository: Repository, sha: str) -> bool:
    """Whether the mirror holds `sha`. False when there is no mirror: the caller decides what
    an unverifiable commit means."""
    repo = open_mirror(repository)
    return repo is not None and _commit(repo, sha) is not None


def commit_info(repository: Repository, sha: str) -> CommitInfo | None:
    repo = open_mirror(repository)
    if repo is None:
        return None
    commit = _commit(repo, sha)
    return _info(commit) if commit is not None else None


def resolve_ref(repository: Repository, ref: str) -> str:
    """The full SHA a branch, tag or abbreviated SHA points at in the mirror."""
    repo = open_mirror(repository)
    if repo is None:
        raise NotFound(
            f"{repository.url} has no local mirror: name the full 40-hex commit SHA instead, "
            "or ask an administrator to configure a mirror (Admin → Repositories).",
            code="no_mirror",
        )
    try:
        return repo.git.rev_parse("--verify", "--end-of-options", f"{ref}^{{commit}}")
    except GitCommandError:
        raise NotFound(
            f"'{ref}' names no commit in {repository.url}: push it, or wait for the mirror to "
            "fetch, then retry.",
            code="unknown_ref",
        ) from None


def commits_between(
    repository: Repository, base_sha: str | None, head_sha: str, *, limit: int = 500
) -> list[CommitInfo]:
    """Commits reachable from `head_sha` but not from `base_sha`, newest first (`git log
    base..head`); every commit up to `head_sha` when there is no base. Empty without a mirror or
    when either end is unknown to it."""
    repo = open_mirror(repository)
    if repo is None or _commit(repo, head_sha) is None:
        return []
    if base_sha and _commit(repo, base_sha) is None:
        return []
    revision = f"{base_sha}..{head_sha}" if base_sha else head_sha
    return [_info(commit) for commit in repo.iter_commits(revision, max_count=limit)]


@dataclass(frozen=True)
class DiffStat:
    """What `git diff --numstat base head` counts: the paths changed and the lines added and
    removed (a binary file counts as a path without lines)."""

    paths: list[str]
    lines: int


def diff_stat(repository: Repository, base_sha: str, head_sha: str) -> DiffStat | None:
    """The change from `base_sha` to `head_sha` in the mirror; None without a mirror or when
    either commit is unknown to it (the caller says what that means)."""
    repo = open_mirror(repository)
    if repo is None or _commit(repo, head_sha) is None or _commit(repo, base_sha) is None:
        return None
    paths, lines = [], 0
    output = repo.git.diff("--numstat", "--no-renames", base_sha, head_sha, "--")
    for row in output.splitlines():
        added, removed, path = row.split("\t", 2)
        paths.append(path)
        lines += sum(int(count) for count in (added, removed) if count.isdigit())
    return DiffStat(paths=sorted(paths), lines=lines)


def fetch_mirror(repository: Repository) -> MirrorFetch:
    """Bring the mirror up to date with its origin; clone it on first use."""
    path = mirror_path(repository)
    if path is None:
        return MirrorFetch(repository, False, "no mirror configured")
    try:
        repo = open_mirror(repository)
        if repo is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            Repo.clone_from(
                repository.url,
                path,
                mirror=True,
                env=NO_PROMPT,
                kill_after_timeout=FETCH_TIMEOUT_SECONDS,
            )
            return MirrorFetch(repository, True, "cloned")
        with repo.git.custom_environment(**NO_PROMPT):
            repo.git.remote("update", "--prune", kill_after_timeout=FETCH_TIMEOUT_SECONDS)
        return MirrorFetch(repository, True, "fetched")
    except GitCommandError as error:
        logger.warning("Fetching the mirror of %s failed: %s", repository.url, error)
        return MirrorFetch(repository, False, (error.stderr or str(error)).strip()[:500])


def fetch_mirrors() -> list[MirrorFetch]:
    """Fetch every configured mirror; one failing remote does not stop the others."""
    return [
        fetch_mirror(repository)
        for repository in Repository.objects.exclude(mirror_path="").order_by("url")
    ]
