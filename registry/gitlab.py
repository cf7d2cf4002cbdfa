"""GitLab through python-gitlab: read a commit's pipeline status, post the portal's commit status,
read a deployment waiting in a protected environment and approve or reject it.

A repository talks to GitLab only when an administrator set its GitLab URL and project id; the
token comes from `settings.GITLAB_TOKEN` (the environment), never from the database.
"""

from dataclasses import dataclass

import gitlab
from django.conf import settings

from portal.exceptions import Conflict
from registry.models import Repository

STATUS_NAME = "gatehouse/change-request"
# GitLab's commit status states.
STATES = {"pending", "running", "success", "failed", "canceled", "skipped"}
REQUEST_TIMEOUT_SECONDS = 10


def client(repository: Repository) -> gitlab.Gitlab:
    if not repository.gitlab_url or repository.gitlab_project_id is None:
        raise Conflict(f"{repository.url} has no GitLab project configured.", code="no_gitlab")
    return gitlab.Gitlab(
        url=repository.gitlab_url,
        private_token=settings.GITLAB_TOKEN or None,
        timeout=REQUEST_TIMEOUT_SECONDS,
        retry_transient_errors=True,
    )


def _project(repository: Repository):
    return client(repository).projects.get(repository.gitlab_project_id, lazy=True)


def pipeline_status(repository: Repository, commit_sha: str) -> str | None:
    """The status of the latest pipeline that ran for `commit_sha` (`success`, `failed`,
    `running`, …), or None when no pipeline ran for it."""
    pipelines = _project(repository).pipelines.list(
        sha=commit_sha, order_by="id", sort="desc", per_page=1, get_all=False
    )
    return pipelines[0].status if pipelines else None


def post_commit_status(
    repository: Repository,
    commit_sha: str,
    *,
    state: str,
    target_url: str,
    description: str = "",
) -> dict:
    """Show a change request's state on the commit in GitLab, linking back to the portal."""
    if state not in STATES:
        raise ValueError(f"GitLab has no commit status state '{state}'.")
    status = (
        _project(repository)
        .commits.get(commit_sha, lazy=True)
        .statuses.create(
            {
                "state": state,
                "name": STATUS_NAME,
                "target_url": target_url,
                "description": description[:255],
            }
        )
    )
    return status.attributes


@dataclass(frozen=True)
class PlatformDeployment:
    """What GitLab itself records of a deployment: the webhook that announced it only names it."""

    id: int
    status: str
    sha: str
    environment: str


def deployment_get(repository: Repository, deployment_id: int) -> PlatformDeployment:
    found = _project(repository).deployments.get(deployment_id)
    return PlatformDeployment(
        id=found.id,
        status=found.status,
        sha=found.sha,
        environment=found.environment["name"],
    )


def deployment_approval(
    repository: Repository, deployment_id: int, *, approved: bool, comment: str
) -> dict:
    """Approve or reject a deployment that a protected environment holds for approval
    (`POST /projects/:id/deployments/:deployment_id/approval`)."""
    deployment = _project(repository).deployments.get(deployment_id, lazy=True)
    return deployment.approval(status="approved" if approved else "rejected", comment=comment)


def portal_url(path: str) -> str:
    """An absolute link back to the portal for a GitLab status or a mail."""
    return f"{settings.PORTAL_BASE_URL}/{path.lstrip('/')}"
