"""Background work of the registry; tasks load ids and call the same functions as the commands."""

from celery import shared_task
from django.utils import timezone

from registry import git, gitlab, model_risk, pipelines
from registry.models import Repository


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=3, ignore_result=True)
def fetch_mirrors() -> list[dict]:
    """Keep every configured mirror current (also `manage.py fetch_mirrors`)."""
    return [
        {"repository": result.repository.url, "ok": result.ok, "detail": result.detail}
        for result in git.fetch_mirrors()
    ]


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5, ignore_result=True)
def post_commit_status(
    repository_id: int, commit_sha: str, state: str, target_path: str, description: str = ""
) -> None:
    """Post `gatehouse/change-request` on a commit; enqueue with `transaction.on_commit`.
    Repositories without a GitLab project are skipped."""
    repository = Repository.objects.filter(pk=repository_id).first()
    if repository is None or not repository.gitlab_url or repository.gitlab_project_id is None:
        return
    gitlab.post_commit_status(
        repository,
        commit_sha,
        state=state,
        target_url=gitlab.portal_url(target_path),
        description=description,
    )


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5, ignore_result=True)
def refresh_pipeline_status(repository_id: int, commit_sha: str) -> str | None:
    repository = Repository.objects.filter(pk=repository_id).first()
    if repository is None:
        return None
    record = pipelines.pipeline_status_refresh(repository=repository, commit_sha=commit_sha)
    return record.status if record else None


@shared_task(ignore_result=True)
def refresh_pipeline_statuses() -> int:
    """Periodic: refresh every recent commit whose pipeline has not reached a final state."""
    pairs = pipelines.commits_to_refresh()
    for repository_id, commit_sha in pairs:
        refresh_pipeline_status.delay(repository_id, commit_sha)
    return len(pairs)


@shared_task(ignore_result=True)
def remind_validations_due() -> int:
    """Daily: validation reminders 60 and 30 days ahead, and the escalation once one lapsed."""
    return model_risk.validation_reminders_send(today=timezone.localdate())
