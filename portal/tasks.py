"""Tasks load ids and call services; they hold no rules."""

import smtplib

from celery import shared_task

from portal import notifications
from portal.idempotency import idempotent_requests_prune

TRANSIENT_MAIL_ERRORS = (smtplib.SMTPException, ConnectionError, TimeoutError)


@shared_task(
    autoretry_for=TRANSIENT_MAIL_ERRORS,
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def deliver_notification(notification_id: int) -> bool:
    return notifications.notification_deliver(notification_id=notification_id)


@shared_task
def deliver_pending_notifications(older_than_seconds: int = 60) -> int:
    """The outbox sweep: anything a broker outage kept from being enqueued goes out now."""
    pending = notifications.pending_deliveries(older_than_seconds=older_than_seconds)
    ids = list(pending.values_list("pk", flat=True)[:500])
    for notification_id in ids:
        deliver_notification.delay(notification_id)
    return len(ids)


@shared_task
def prune_idempotency_keys() -> int:
    return idempotent_requests_prune()
