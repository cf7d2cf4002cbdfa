"""The periodic jobs beat runs. Installed into django-celery-beat's tables after `migrate` when
missing; an administrator's edits in the admin (timing, pausing) are never overwritten."""

from django.db import transaction

# name, task, every (seconds) or a daily hour (UTC)
SCHEDULES = [
    ("Deliver notifications left in the outbox", "portal.tasks.deliver_pending_notifications", 60),
    ("Poll the health of live deployments", "releases.tasks.poll_health", 60),
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
    ("Refresh GitLab pipeline statuses", "registry.tasks.refresh_pipeline_statuses", 300),
    ("Remind stale sign-offs", "releases.tasks.remind_stale_sign_offs", "daily@08"),
    ("Forget old idempotency keys", "portal.tasks.prune_idempotency_keys", "daily@03"),
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
