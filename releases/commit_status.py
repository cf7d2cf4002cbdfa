"""Shows a change request's state on its commit in GitLab (`gatehouse/change-request`), linking
back to the portal, so reviewers in GitLab see the governance state next to the pipeline."""

from django.urls import reverse

from portal.queue import enqueue_on_commit
from registry.pipelines import linked_to_gitlab
from registry.tasks import post_commit_status
from releases.models import ChangeRequest
from releases.states import State

GITLAB_STATE = {
    State.DRAFT: "pending",
    State.IN_REVIEW: "pending",
    State.IN_APPROVAL: "pending",
    State.AWAITING_AUTHORISATION: "pending",
    State.APPROVED: "success",
    State.AUTHORISED: "success",
    State.DEPLOYED: "success",
    State.RETRO_REVIEW: "success",
    State.CLOSED: "success",
    State.REJECTED: "failed",
    State.ROLLED_BACK: "failed",
    State.CANCELLED: "canceled",
    State.EXPIRED: "canceled",
}


def change_request_status_post(*, change_request: ChangeRequest) -> None:
    """Post the request's current state after the transaction commits; nothing for
    repositories without a GitLab project."""
    version = change_request.model_version
    repository = version.repository
    if not linked_to_gitlab(repository):
        return
    enqueue_on_commit(
        post_commit_status,
        repository.pk,
        version.commit_sha,
        GITLAB_STATE[change_request.state],
        reverse("releases:change-request", kwargs={"number": change_request.number}),
        f"{change_request.number} {change_request.get_state_display().lower()} "
        f"for {change_request.environment.name}",
    )
