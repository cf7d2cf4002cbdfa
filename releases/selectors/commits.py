"""The commits a release brings: between what is live in the environment and the candidate.

Used for the "commits in this release" panel and for the policy that excludes commit authors
from signing (rule 4)."""

from dataclasses import dataclass, field
from datetime import datetime

import git

from registry.models import ModelVersion
from releases.models import Deployment, Environment

MAX_COMMITS = 200


@dataclass(frozen=True)
class Commit:
    sha: str
    author_name: str
    author_email: str
    authored_at: datetime
    summary: str


@dataclass
class ReleaseCommits:
    """`known` is False when the commits cannot be read (no mirror, unknown SHA): callers that
    enforce a rule on them must then refuse rather than guess."""

    live: ModelVersion | None
    commits: list[Commit] = field(default_factory=list)
    known: bool = True
    note: str = ""

    @property
    def author_emails(self) -> set[str]:
        return {c.author_email.strip().lower() for c in self.commits if c.author_email}


def live_model_version(*, environment: Environment, model_id: int) -> ModelVersion | None:
    """The version whose deployment last succeeded there (a rollback is itself a deployment)."""
    deployment = (
        Deployment.objects.filter(
            environment=environment, model_id=model_id, succeeded_at__isnull=False
        )
        .select_related("model_version")
        .order_by("-succeeded_at")
        .first()
    )
    return deployment.model_version if deployment else None


def commits_between(*, mirror_path: str, base_sha: str | None, head_sha: str) -> list[Commit]:
    """Commits reachable from `head_sha` and not from `base_sha`, newest first."""
    repo = git.Repo(mirror_path)
    revision = f"{base_sha}..{head_sha}" if base_sha else head_sha
    return [
        Commit(
            sha=c.hexsha,
            author_name=c.author.name or "",
            author_email=c.author.email or "",
            authored_at=c.authored_datetime,
            summary=c.summary if isinstance(c.summary, str) else c.summary.decode(),
        )
        for c in repo.iter_commits(revision, max_count=MAX_COMMITS)
    ]


def release_commits(*, model_version: ModelVersion, environment: Environment) -> ReleaseCommits:
    live = live_model_version(environment=environment, model_id=model_version.model_id)
    repository = model_version.repository
    if not repository.mirror_path:
        return ReleaseCommits(
            live=live, known=False, note=f"No local mirror is configured for {repository.url}."
        )
    base = live.commit_sha if live and live.repository_id == repository.pk else None
    try:
        commits = commits_between(
            mirror_path=repository.mirror_path, base_sha=base, head_sha=model_version.commit_sha
        )
    except (git.GitCommandError, git.NoSuchPathError, git.InvalidGitRepositoryError, ValueError):
        return ReleaseCommits(
            live=live, known=False, note="The mirror does not hold these commits (fetch it?)."
        )
    return ReleaseCommits(live=live, commits=commits)
