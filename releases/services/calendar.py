"""The change calendar's own records: maintenance windows, planned by administrators, and the
secret addresses of the iCalendar feeds that people and teams subscribe to from Outlook."""

import secrets
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record, describe_actor
from portal.exceptions import Conflict
from portal.models import ServiceAccount, Team
from releases.models import CalendarFeed, Environment, MaintenanceWindow
from releases.permissions import Action, refuse
from releases.selectors.calendar import feed_token_hash

Actor = AbstractBaseUser | ServiceAccount | None


def _maintenance_data(window: MaintenanceWindow) -> dict:
    return {"starts_at": window.starts_at, "ends_at": window.ends_at, "title": window.title}


@transaction.atomic
def maintenance_window_create(
    *,
    actor: Actor,
    environment: Environment,
    starts_at: datetime,
    ends_at: datetime,
    title: str,
    request=None,
) -> MaintenanceWindow:
    """A planned maintenance of the environment's platform, for the calendar: changes are planned
    around it, and it refuses nothing."""
    if ends_at <= starts_at:
        raise Conflict(
            "A maintenance window must end after it starts: choose an end after the start.",
            code="window_order",
        )
    window = MaintenanceWindow(
        environment=environment,
        starts_at=starts_at,
        ends_at=ends_at,
        title=title,
        created_by_name=describe_actor(actor).name,
    )
    window.full_clean()
    window.save()
    audit_record(
        actor=actor,
        action=AuditAction.MAINTENANCE_WINDOW_CREATED,
        target=window,
        environment=environment,
        data=_maintenance_data(window),
        request=request,
    )
    return window


@transaction.atomic
def maintenance_window_cancel(
    *, actor: Actor, maintenance_window: MaintenanceWindow, reason: str, request=None
) -> MaintenanceWindow:
    """Call a maintenance off. The row stays, marked cancelled, as the calendar showed it."""
    window = MaintenanceWindow.objects.select_for_update().get(pk=maintenance_window.pk)
    if window.cancelled_at is not None:
        raise Conflict(
            "This maintenance window is already cancelled; there is nothing more to do.",
            code="window_cancelled",
        )
    window.cancelled_at = timezone.now()
    window.cancelled_by_name = describe_actor(actor).name
    window.cancel_reason = reason
    window.full_clean()
    window.save()
    audit_record(
        actor=actor,
        action=AuditAction.MAINTENANCE_WINDOW_CANCELLED,
        target=window,
        environment=window.environment,
        data={**_maintenance_data(window), "cancel_reason": reason},
        request=request,
    )
    return window


@dataclass(frozen=True)
class IssuedFeed:
    """A new feed and its token, shown once: only its hash is kept."""

    feed: CalendarFeed
    token: str


def _owner_data(owner: AbstractBaseUser | Team) -> dict:
    if isinstance(owner, Team):
        return {"team": owner.slug}
    return {"user": owner.get_username()}


def _owner_filter(owner: AbstractBaseUser | Team) -> dict:
    return {"team": owner} if isinstance(owner, Team) else {"user": owner}


def _revoke(feed: CalendarFeed, actor: AbstractBaseUser, now: datetime) -> None:
    feed.revoked_at = now
    feed.revoked_by_name = describe_actor(actor).name
    feed.save(update_fields=["revoked_at", "revoked_by_name"])


@transaction.atomic
def calendar_feed_issue(
    *, actor: AbstractBaseUser, owner: AbstractBaseUser | Team, request=None
) -> IssuedFeed:
    """A new secret address for the calendar of `owner` (the actor themself, or a team they
    belong to). The address it replaces stops answering at once."""
    refuse(actor, Action.MANAGE_CALENDAR_FEED, owner)
    now = timezone.now()
    replaced = (
        CalendarFeed.objects.select_for_update()
        .filter(revoked_at__isnull=True, **_owner_filter(owner))
        .first()
    )
    if replaced is not None:
        _revoke(replaced, actor, now)
    token = secrets.token_urlsafe(32)
    feed = CalendarFeed(
        token_hash=feed_token_hash(token),
        created_at=now,
        created_by_name=describe_actor(actor).name,
        **_owner_filter(owner),
    )
    feed.full_clean()
    feed.save()
    audit_record(
        actor=actor,
        action=AuditAction.CALENDAR_FEED_ISSUED,
        target=feed,
        data={**_owner_data(owner), "replaces": replaced.pk if replaced else None},
        request=request,
    )
    return IssuedFeed(feed=feed, token=token)


@transaction.atomic
def calendar_feed_revoke(
    *, actor: AbstractBaseUser, feed: CalendarFeed, request=None
) -> CalendarFeed:
    """Stop the feed's address answering (a 404 from then on)."""
    rows = CalendarFeed.objects.select_for_update(of=("self",)).select_related("user", "team")
    feed = rows.get(pk=feed.pk)
    owner = feed.team or feed.user
    refuse(actor, Action.MANAGE_CALENDAR_FEED, owner)
    if feed.is_revoked:
        raise Conflict(
            "This calendar feed is already revoked; issue a new one if you need it.",
            code="feed_revoked",
        )
    _revoke(feed, actor, timezone.now())
    audit_record(
        actor=actor,
        action=AuditAction.CALENDAR_FEED_REVOKED,
        target=feed,
        data=_owner_data(owner),
        request=request,
    )
    return feed
