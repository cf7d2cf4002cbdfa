"""Pipeline statuses from GitLab, kept so the gate can answer without calling GitLab."""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from registry import gitlab
from registry.models import ModelVersion, PipelineStatus, Repository

NO_PIPELINE = "none"


def linked_to_gitlab(repository: Repository) -> bool:
    return bool(repository.gitlab_url and repository.gitlab_project_id is not None)


def pipeline_status_refresh(
    *, repository: Repository, commit_sha: str, now: datetime | None = None
) -> PipelineStatus | None:
    """Ask GitLab now and keep the answer; a change of status is audited (the gate relies on
    it). The GitLab call happens before the transaction, so no lock waits on the network."""
    if not linked_to_gitlab(repository):
        return None
    status = gitlab.pipeline_status(repository, commit_sha) or NO_PIPELINE
    with transaction.atomic():
        record = (
            PipelineStatus.objects.select_for_update()
            .filter(repository=repository, commit_sha=commit_sha)
            .first()
        )
        before = record.status if record else None
        if record is None:
            record = PipelineStatus(repository=repository, commit_sha=commit_sha)
        record.status = status
        record.checked_at = now or timezone.now()
        record.full_clean()
        record.save()
        if before != status:
            audit_record(
                actor=None,
                action=AuditAction.PIPELINE_STATUS_CHANGED,
                target=record,
                data={
                    "repository": repository.url,
                    "commit_sha": commit_sha,
                    "before": before,
                    "after": status,
                },
            )
    return record


def commits_to_refresh(*, since_days: int = 30) -> list[tuple[int, str]]:
    """Commits of recent builds in GitLab-linked repositories whose pipeline is not final."""
    cutoff = timezone.now() - timedelta(days=since_days)
    final = PipelineStatus.objects.filter(status__in=["success", "failed", "canceled"])
    recent = (
        ModelVersion.objects.filter(
            created_at__gte=cutoff,
            repository__gitlab_project_id__isnull=False,
        )
        .exclude(repository__gitlab_url="")
        .values_list("repository_id", "commit_sha")
        .distinct()
    )
    done = set(final.values_list("repository_id", "commit_sha"))
    return [pair for pair in recent if pair not in done]
