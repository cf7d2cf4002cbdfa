"""From the trail to the endpoints: the fan-out writes one delivery per (subscription, event),
and each delivery is POSTed until it is taken, with back-off, off the users' requests.

The fan-out claims its events (integrations.outbox) in the transaction that writes the
deliveries: a failure rolls both back and the next run takes the same events again, and the
unique (subscription, event) pair refuses a second delivery whatever happens. A delivery is
sent outside any transaction (a slow endpoint holds no lock): a worker first leases it by
moving its next attempt past the longest a POST can take, in one conditional UPDATE, so two
workers never send the same attempt; a worker that dies mid-POST leaves a lease that runs out,
and the delivery is tried again (at least once, never lost). Receivers drop repeats by the
`webhook-id`, which is the same on every attempt.
"""

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit.models import AuditEvent
from integrations.models import (
    DeliveryStatus,
    TrailCursor,
    WebhookAttempt,
    WebhookDelivery,
    WebhookKind,
    WebhookSubscription,
)
from integrations.outbox import claim_events
from integrations.webhook_events import SOURCE_ACTIONS, event_types, message_for, render
from integrations.webhook_secrets import signature

logger = logging.getLogger(__name__)

CONSUMER = "webhooks"
# After attempt n fails, attempt n + 1 comes this long after; after the last, the delivery fails.
RETRY_DELAYS = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# A receiver's Retry-After is honoured up to this long.
LONGEST_RETRY_AFTER = timedelta(hours=24)
# 410 Gone: the channel or endpoint was removed; asking again will not bring it back.
GONE = 410


def message_id_new() -> str:
    return f"msg_{uuid.uuid4().hex}"


def _matches(subscription: WebhookSubscription, event: AuditEvent) -> bool:
    """The event's environment is one it names (or it names none), and the event came after
    the subscription: a new subscription is not sent the past."""
    environments = subscription.environments
    return event.seq > subscription.starts_after_seq and (
        not environments or event.environment in environments
    )


def _cursor_start() -> None:
    """The first run starts where the oldest subscription does, or at the trail's tail: a
    portal installed over years of trail does not read all of it before its first message."""
    if TrailCursor.objects.filter(name=CONSUMER).exists():
        return
    tail = AuditEvent.objects.aggregate(tail=Max("seq"))["tail"] or 0
    active = WebhookSubscription.objects.filter(is_active=True)
    start = min([tail, *active.values_list("starts_after_seq", flat=True)])
    TrailCursor.objects.get_or_create(name=CONSUMER, defaults={"last_seq": start})


@transaction.atomic
def webhooks_fan_out(*, limit: int = 500) -> list[WebhookDelivery]:
    """Claim the new events for the webhooks and write the deliveries they make, in one
    transaction; each event's message is written once and rendered per endpoint kind."""
    _cursor_start()
    events = claim_events(consumer=CONSUMER, actions=SOURCE_ACTIONS, limit=limit)
    if not events:
        return []
    # Read after the claim: a subscription made before a claimed event has committed by now
    # (its own "webhook.created" event precedes it on the trail).
    subscriptions = list(WebhookSubscription.objects.filter(is_active=True))
    now = timezone.now()
    deliveries = []
    for event in events:
        types = event_types(event)
        wanted = []
        for subscription in subscriptions:
            chosen = next((t for t in types if t in subscription.event_types), None)
            if chosen and _matches(subscription, event):
                wanted.append((subscription, chosen))
        message = message_for(event) if wanted else None
        if message is None:
            continue
        deliveries += [
            WebhookDelivery(
                subscription=subscription,
                event=event,
                event_type=chosen,
                body=render(subscription.kind, message, chosen),
                message_id=message_id_new(),
                next_attempt_at=now,
                created_at=now,
            )
            for subscription, chosen in wanted
        ]
    return WebhookDelivery.objects.bulk_create(deliveries)


def deliveries_due(*, limit: int = 200) -> list[int]:
    """Deliveries whose attempt is due, oldest due first. A test message is not one: it has its
    one attempt in the request that asked for it."""
    return list(
        WebhookDelivery.objects.filter(
            event__isnull=False,
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=timezone.now(),
            subscription__is_active=True,
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


@dataclass
class Outcome:
    status_code: int | None
    error: str
    answer: str
    duration_ms: int
    retry_after: timedelta | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _lease() -> timedelta:
    """Longer than any POST can take, so a lease runs out only when its worker is gone."""
    return timedelta(seconds=2 * settings.WEBHOOK_TIMEOUT_SECONDS + 60)


def _retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Seconds or an HTTP date, as RFC 9110 allows; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        wait = timedelta(seconds=int(value))
    else:
        try:
            wait = parsedate_to_datetime(value) - now
        except (TypeError, ValueError):
            return None
    return min(max(wait, timedelta(0)), LONGEST_RETRY_AFTER)


def _reason(error: BaseException) -> str:
    """Why a POST got no answer, without the URL (a chat URL holds its credential)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return type(error).__name__


def _headers(delivery: WebhookDelivery, subscription: WebhookSubscription, now: datetime) -> dict:
    headers = {"Content-Type": "application/json", "User-Agent": "Gatehouse-Webhooks/1"}
    if subscription.kind != WebhookKind.STANDARD:
        return headers
    secrets = [subscription.secret]
    if subscription.previous_secret and (subscription.previous_secret_until or now) > now:
        secrets.append(subscription.previous_secret)
    headers.update(
        {
            "webhook-id": delivery.message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": " ".join(
                signature(
                    secret=secret, message_id=delivery.message_id, timestamp=now, body=delivery.body
                )
                for secret in secrets
                if secret
            ),
        }
    )
    return headers


def _post(delivery: WebhookDelivery, subscription: WebhookSubscription, now: datetime) -> Outcome:
    if not subscription.url or (
        subscription.kind == WebhookKind.STANDARD and not subscription.secret
    ):
        return Outcome(None, "The URL or secret cannot be decrypted: check the key.", "", 0)
    started = time.monotonic()
    try:
        response = requests.post(
            subscription.url,
            data=delivery.body.encode(),
            headers=_headers(delivery, subscription, now),
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.Timeout:
        error = f"No answer within {settings.WEBHOOK_TIMEOUT_SECONDS:g} s."
        return Outcome(None, error, "", _elapsed(started))
    except requests.RequestException as failure:
        return Outcome(None, f"No answer: {_reason(failure)}."[:300], "", _elapsed(started))
    error = ""
    if response.is_redirect:
        error = "A redirect, not followed: point the subscription at the final URL."
    elif not 200 <= response.status_code < 300:
        error = f"HTTP {response.status_code} {response.reason or ''}".strip()[:300]
    retry_after = None
    if response.status_code in (429, 503):
        retry_after = _retry_after(response.headers.get("Retry-After"), now)
    return Outcome(response.status_code, error, response.text[:500], _elapsed(started), retry_after)


def _elapsed(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _lease_take(delivery_id: int, now: datetime, *, first_only: bool) -> bool:
    """One conditional UPDATE on the delivery's own columns: PostgreSQL re-checks them on the
    row a concurrent worker just leased, so only one worker gets it. (A condition on the
    subscription would be a subquery, which the re-check does not re-read.)"""
    if not WebhookSubscription.objects.filter(deliveries=delivery_id, is_active=True).exists():
        return False
    due = WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING)
    if first_only:
        due = due.filter(attempts=0, next_attempt_at__isnull=True)
    else:
        due = due.filter(next_attempt_at__lte=now)
    return due.update(next_attempt_at=now + _lease()) == 1


@transaction.atomic
def _record(delivery_id: int, outcome: Outcome, now: datetime, *, retry: bool) -> WebhookAttempt:
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
    delivery.attempts += 1
    if outcome.succeeded:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
            DeliveryStatus.DELIVERED,
            now,
            None,
        )
    elif not retry or outcome.status_code == GONE or delivery.attempts >= MAX_ATTEMPTS:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
    else:
        delay = outcome.retry_after
        if delay is None:
            delay = RETRY_DELAYS[delivery.attempts - 1]
        delivery.next_attempt_at = now + delay
    delivery.save(update_fields=["attempts", "status", "delivered_at", "next_attempt_at"])
    return WebhookAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempts,
        attempted_at=now,
        status_code=outcome.status_code,
        error=outcome.error,
        duration_ms=outcome.duration_ms,
        answer=outcome.answer,
        retry_at=delivery.next_attempt_at,
    )


def webhook_delivery_attempt(*, delivery_id: int, retry: bool = True) -> WebhookAttempt | None:
    """POST a due delivery once and log the attempt, or None when it is not due (delivered,
    given up, its subscription deactivated, or another worker has it). With `retry` False (a
    test message) the one attempt is also the last, and it is taken at once."""
    now = timezone.now()
    if not _lease_take(delivery_id, now, first_only=not retry):
        return None
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    outcome = _post(delivery, delivery.subscription, now)
    if not outcome.succeeded:
        logger.info(
            "Webhook delivery %s to %s: %s",
            delivery.message_id,
            delivery.subscription.url_hint,
            outcome.error,
        )
    return _record(delivery_id, outcome, now, retry=retry)
