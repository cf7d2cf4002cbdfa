"""Notifications: written in the caller's transaction, mailed by a worker after commit."""

import re
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from portal.models import Notification
from portal.queue import enqueue_on_commit

# Line breaks and other control characters: in a mail header they would start a new header.
SUBJECT_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def notify(
    *,
    recipients: Iterable[AbstractBaseUser],
    key: str,
    subject: str,
    body: str,
    reason: str,
    link: str = "",
) -> list[Notification]:
    """Tell each recipient once per `key`; the mail goes out only if the transaction commits."""
    from portal.tasks import deliver_notification

    created = []
    for recipient in {user.pk: user for user in recipients}.values():
        notification, is_new = Notification.objects.get_or_create(
            recipient=recipient,
            key=key,
            defaults={"subject": subject, "body": body, "reason": reason, "link": link},
        )
        if is_new:
            created.append(notification)
            enqueue_on_commit(deliver_notification, notification.pk)
    return created


@transaction.atomic
def notification_deliver(*, notification_id: int) -> bool:
    """Mail one notification unless it went out already. True when a mail was sent now.

    The row lock makes two workers holding the same task deliver it once."""
    notification = (
        Notification.objects.select_for_update()
        .select_related("recipient")
        .filter(pk=notification_id)
        .first()
    )
    if notification is None or notification.emailed_at is not None:
        return False
    if not notification.recipient.email:
        notification.emailed_at = timezone.now()
        notification.save(update_fields=["emailed_at"])
        return False
    link = f"{settings.PORTAL_BASE_URL}{notification.link}" if notification.link else ""
    body = f"{notification.body}\n\n{link}\n\nWhy you got this: {notification.reason}".strip()
    EmailMessage(
        subject=f"[Gatehouse] {one_line(notification.subject)}",
        body=body,
        to=[notification.recipient.email],
        headers={"X-Gatehouse-Notification": str(notification.pk)},
    ).send()
    notification.emailed_at = timezone.now()
    notification.attempts += 1
    notification.save(update_fields=["emailed_at", "attempts"])
    return True


def one_line(subject: str) -> str:
    """The subject as one line. Titles are refused with line breaks (portal.validators), but a
    notification written before that rule must still go out, not fail on every retry."""
    return SUBJECT_BREAKS.sub(" ", subject).strip()


def pending_deliveries(*, older_than_seconds: int = 60) -> QuerySet[Notification]:
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return Notification.objects.filter(emailed_at__isnull=True, created_at__lte=cutoff)


def notifications_for(*, user: AbstractBaseUser) -> QuerySet[Notification]:
    return Notification.objects.filter(recipient=user)


def notifications_mark_read(*, actor: AbstractBaseUser) -> int:
    """Personal reading state, not governed data: not audited."""
    return Notification.objects.filter(recipient=actor, read_at__isnull=True).update(
        read_at=timezone.now()
    )
