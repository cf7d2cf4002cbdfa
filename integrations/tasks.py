"""Background work of the integrations. Tasks load ids and call the services."""

from celery import shared_task
from django.conf import settings

from integrations.mlflow_source import MlflowUnreachable, mlflow_import
from integrations.tickets import change_ticket_deliver, change_tickets_claim, change_tickets_due
from integrations.webhook_delivery import (
    deliveries_due,
    webhook_delivery_attempt,
    webhooks_fan_out,
)
from portal.queue import enqueue_on_commit

CLAIM_BATCH = 200


def change_tickets_take_all() -> int:
    """Claim from the trail until it has nothing new for the tickets; returns the events taken."""
    taken = 0
    while (claimed := change_tickets_claim(limit=CLAIM_BATCH)) > 0:
        taken += claimed
        if claimed < CLAIM_BATCH:
            break
    return taken


@shared_task
def sync_change_tickets() -> int:
    """The sweep, every 30 seconds: new change request events become transitions, and every
    ticket with one due goes to a worker. A ticket whose hand-over the broker refused is due
    again at the next sweep, so a broker outage delays its delivery and loses nothing."""
    change_tickets_take_all()
    due = change_tickets_due()
    for ticket_id in due:
        enqueue_on_commit(deliver_change_ticket, ticket_id)
    return len(due)


@shared_task(acks_late=True)
def deliver_change_ticket(ticket_id: int) -> int:
    return change_ticket_deliver(ticket_id=ticket_id)


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


@shared_task(
    autoretry_for=(MlflowUnreachable,),
    retry_backoff=60,
    retry_backoff_max=900,
    max_retries=5,
)
def import_from_mlflow() -> int:
    """Every 5 minutes, when an MLflow tracking server is connected: register its new versions
    and flag aliases and stages moved outside Gatehouse. An MLflow that does not answer is
    retried with back-off and the failure is logged; the next run starts over."""
    if not settings.GATEHOUSE_MLFLOW_TRACKING_URI:
        return 0
    return len(mlflow_import().imported)
