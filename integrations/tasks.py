"""Tasks load ids and call services; they hold no rules."""

from celery import shared_task

from integrations.webhook_delivery import (
    deliveries_due,
    webhook_delivery_attempt,
    webhooks_fan_out,
)
from portal.queue import enqueue_on_commit


@shared_task
def deliver_webhook(delivery_id: int) -> bool:
    return webhook_delivery_attempt(delivery_id=delivery_id) is not None


@shared_task
def deliver_webhooks() -> int:
    """Every 30 s: turn the trail's new events into deliveries, then hand every delivery that
    is due (new, or its back-off over) to a worker. A delivery the broker loses is due again
    at the next run."""
    webhooks_fan_out()
    due = deliveries_due()
    for delivery_id in due:
        enqueue_on_commit(deliver_webhook, delivery_id)
    return len(due)
