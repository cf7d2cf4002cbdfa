"""The commits a release brings: between what is live in the environment and the candidate.

Used for the "commits in this release" panel and for the policy that excludes commit authors
from signing (rule 4). Git is read through the registry's mirror adapter."""

from dataclasses import dataclass, field
from datetime import datetime

from registry import git
from registry.models import ModelVersion
from registry.selectors import commits_in_release
from releases.models import Environment
from releases.selectors.live import live_deployment


@dataclass
class ReleaseCommits:
    """`known` is False when the commits cannot be read (no mirror, a SHA the mirror lacks,
    another repository): a rule that depends on them must then refuse rather than guess."""

    live: ModelVersion | None
    commits: list[git.CommitInfo] = field(default_factory=list)
    known: bool = True
    note: str = ""
    remedy: str = ""

    @property
    def author_emails(self) -> set[str]:
        return {c.author_email.strip().lower() for c in self.commits if c.author_email}


def release_commits(
    *, model_version: ModelVersion, environment: Environment, at: datetime | None = None
) -> ReleaseCommits:
    """The commits `model_version` brings over what is live in `environment` (or was, at `at`:
    a deployed change's release is measured from the version live before it)."""
    deployment = live_deployment(environment=environment, model=model_version.model, at=at)
    live = deployment.model_version if deployment else None
    repository = model_version.repository
    if git.open_mirror(repository) is None:
        return ReleaseCommits(
            live=live,
            known=False,
            note=f"no local mirror of {repository.url} is configured",
            remedy=(
                "An administrator can fix this: Admin → Repositories → "
                f"{repository.url} → Mirror path (a bare clone under GATEHOUSE_VAR_DIR), then "
                "manage.py fetch_mirrors. Until then, read the commits in the repository itself."
            ),
        )
    if live is not None and live.repository_id != repository.pk:
        return ReleaseCommits(
            live=live,
            known=False,
            note="the live version comes from another repository",
            remedy="Compare the two repositories in their own tools; the portal lists commits "
            "within one repository only.",
        )
    ends = [model_version.commit_sha] + ([live.commit_sha] if live else [])
    if not all(git.commit_exists(repository, sha) for sha in ends):
        return ReleaseCommits(
            live=live,
            known=False,
            note="the mirror does not hold these commits yet",
            remedy="The mirror fetches on its schedule; an administrator can run manage.py "
            "fetch_mirrors now. If the commit was never pushed, push it.",
        )
    return ReleaseCommits(live=live, commits=commits_in_release(live=live, candidate=model_version))
