"""The periodic jobs beat runs. Installed into django-celery-beat's tables after `migrate` when
missing; an administrator's edits in the admin (timing, pausing) are never overwritten, and are
audited: pausing the chain's verification or an escalation is a change like any other."""

from django.db import models, transaction

from audit.actions import AuditAction
from audit.services import audit_record

# Beat's own bookkeeping, rewritten at every run: not a change anybody made.
RUN_BOOKKEEPING = {"last_run_at", "total_run_count", "date_changed"}

# name, task, every (seconds) or a daily hour (UTC)
SCHEDULES = [
    ("Deliver notifications left in the outbox", "portal.tasks.deliver_pending_notifications", 60),
    ("Deliver chat and webhook messages", "integrations.tasks.deliver_webhooks", 30),
    ("Sync change tickets (ServiceNow, Jira)", "integrations.tasks.sync_change_tickets", 30),
    ("Poll the health of live deployments", "releases.tasks.poll_health", 60),
    ("Observe the models running in clusters", "releases.tasks.observe_runtimes", 120),
    ("Expire change requests whose window passed", "releases.tasks.expire_change_requests", 300),
    ("Escalate emergency retrospectives", "releases.tasks.escalate_retrospectives", 900),
    (
        "Escalate unreviewed unauthorised changes",
        "releases.tasks.escalate_unauthorised_changes",
        900,
    ),
    (
        "Verify the audit chain and sign a checkpoint",
        "audit.tasks.audit_verify_and_checkpoint",
        3600,
    ),
    (
        "Reconcile the tables with the audit trail",
        "releases.tasks.audit_reconcile",
        3600,
    ),
    ("Fetch git mirrors", "registry.tasks.fetch_mirrors", 900),
    ("Import versions from MLflow", "integrations.tasks.import_from_mlflow", 300),
    ("Refresh GitLab pipeline statuses", "registry.tasks.refresh_pipeline_statuses", 300),
    ("Remind stale sign-offs", "releases.tasks.remind_stale_sign_offs", "daily@08"),
    ("Forget old idempotency keys", "portal.tasks.prune_idempotency_keys", "daily@03"),
    ("Remind validations due", "registry.tasks.remind_validations_due", "daily@07"),
]


@transaction.atomic
def install_schedules(**kwargs) -> int:
    """Create the periodic tasks that do not exist yet; returns how many were created."""
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    created = 0
    for name, task, every in SCHEDULES:
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        if isinstance(every, int):
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=every, period=IntervalSchedule.SECONDS
            )
            PeriodicTask.objects.create(name=name, task=task, interval=interval)
        else:
            hour = every.split("@")[1]
            crontab, _ = CrontabSchedule.objects.get_or_create(
                minute="0", hour=hour, day_of_week="*", day_of_month="*", month_of_year="*"
            )
            PeriodicTask.objects.create(name=name, task=task, crontab=crontab)
        created += 1
    return created


def _schedule_record(schedule: models.Model) -> dict:
    return {
        field.name: field.value_to_string(schedule)
        for field in schedule._meta.concrete_fields
        if field.name not in RUN_BOOKKEEPING and not field.primary_key
    }


@transaction.atomic
def schedule_save(*, actor, schedule: models.Model, request=None) -> models.Model:
    """Create or change a periodic task or one of its schedules (interval, crontab, solar,
    clocked). Nothing changed writes nothing."""
    model = type(schedule)
    stored = model.objects.select_for_update().filter(pk=schedule.pk).first()
    before = _schedule_record(stored) if stored else None
    schedule.full_clean()
    schedule.save()
    after = _schedule_record(schedule)
    if after == before:
        return schedule
    audit_record(
        actor=actor,
        action=AuditAction.SCHEDULE_UPDATED if stored else AuditAction.SCHEDULE_CREATED,
        target=schedule,
        data={"kind": model._meta.model_name, "before": before, "after": after},
        request=request,
    )
    return schedule


@transaction.atomic
def schedule_delete(*, actor, schedule: models.Model, request=None) -> None:
    model = type(schedule)
    schedule = model.objects.select_for_update().get(pk=schedule.pk)
    # Recorded first, while the object still has its id and name; the deletion commits with it.
    audit_record(
        actor=actor,
        action=AuditAction.SCHEDULE_DELETED,
        target=schedule,
        data={"kind": model._meta.model_name, "before": _schedule_record(schedule)},
        request=request,
    )
    schedule.delete()
