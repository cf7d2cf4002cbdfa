"""Who may read the audit trail, and the reads themselves.

Every read takes the user and refuses people without audit rights, so no view can forget the
check. Event lists use keyset pagination on `seq`, newest first: each filter has a composite index
`(column, seq)`, so a page costs the same at ten thousand events as at ten million.
"""

from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from audit import hooks
from audit.models import AuditCheckpoint, AuditEvent, AuditVerification
from portal.authentication import is_service_account
from portal.exceptions import RuleDenied
from portal.models import Membership, Scope

AUDITORS_GROUP = "Auditors"
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
STREAM_CHUNK = 2000


def can_read_audit(user: Any) -> bool:
    """Auditors (the "Auditors" group), change managers (emergency approvers), staff and
    superusers; service accounts with the `audit:read` scope. Nobody may change the trail."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if is_service_account(user):
        return user.has_scope(Scope.AUDIT_READ)
    cached = getattr(user, "_can_read_audit", None)
    if cached is None:
        cached = user.is_active and (
            user.is_staff
            or user.is_superuser
            or user.groups.filter(name=AUDITORS_GROUP).exists()
            or Membership.objects.filter(user=user, is_emergency_approver=True).exists()
        )
        user._can_read_audit = cached
    return cached


def _require(user: Any) -> None:
    if not can_read_audit(user):
        raise RuleDenied(
            "Only auditors, change managers and administrators read the audit trail; an "
            "administrator makes a person an auditor, and grants a token 'audit:read'."
        )


@dataclass(frozen=True)
class EventFilters:
    actor: str = ""
    action: str = ""
    object_type: str = ""
    object_id: str = ""
    environment: str = ""
    about: str = ""
    model: str = ""
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def from_data(cls, data: dict) -> "EventFilters":
        return cls(**{f.name: data.get(f.name) or f.default for f in fields(cls)})

    def as_query(self) -> dict[str, str]:
        query = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if value:
                query[field.name] = value.isoformat() if isinstance(value, datetime) else value
        return query


@dataclass(frozen=True)
class EventPage:
    events: list[AuditEvent]
    next_cursor: int | None


def _concerning(about: hooks.About | None) -> Q:
    """Events about any of the objects `about` stands for; none when it stands for nothing."""
    concerning = Q(pk__in=[])
    for object_type, object_ids in (about.subjects if about else {}).items():
        if object_ids:
            concerning |= Q(object_type=object_type, object_id__in=sorted(object_ids))
    return concerning


def describe_about(text: str) -> str:
    """What the "about" filter understood `text` to be, in words, for the page to say."""
    about = hooks.resolve_about(text)
    if about is None:
        return (
            f"Nothing called “{text}” is known. Type a change request (CR-22), a model's name, "
            "a deployment (D-17) or a commit SHA (7 or more hex digits)."
        )
    return about.label


def _filtered(filters: EventFilters) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all()
    exact = {
        "actor_name": filters.actor,
        "action": filters.action,
        "object_type": filters.object_type,
        "object_id": filters.object_id,
        "environment": filters.environment,
    }
    events = events.filter(**{column: value for column, value in exact.items() if value})
    for text, resolve in (
        (filters.about, hooks.resolve_about),
        (filters.model, hooks.resolve_model),
    ):
        if text:
            events = events.filter(_concerning(resolve(text)))
    if filters.since is not None:
        events = events.filter(occurred_at__gte=filters.since)
    if filters.until is not None:
        events = events.filter(occurred_at__lte=filters.until)
    return events


def audit_event_page(
    *, user: Any, filters: EventFilters, cursor: int | None = None, limit: int = PAGE_SIZE
) -> EventPage:
    """One page of events matching the filters, newest first, older than `cursor` (a sequence
    number from the previous page's `next_cursor`)."""
    _require(user)
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    events = _filtered(filters)
    if cursor is not None:
        events = events.filter(seq__lt=cursor)
    rows = list(events.order_by("-seq")[: limit + 1])
    next_cursor = rows[limit - 1].seq if len(rows) > limit else None
    return EventPage(events=rows[:limit], next_cursor=next_cursor)


def audit_events_stream(*, user: Any, filters: EventFilters) -> Iterator[AuditEvent]:
    """Every matching event, newest first, fetched in keyset chunks so an export of millions
    holds one chunk in memory and never runs an OFFSET scan."""
    _require(user)
    events = _filtered(filters).order_by("-seq")
    cursor = None
    while True:
        chunk = list((events.filter(seq__lt=cursor) if cursor else events)[:STREAM_CHUNK])
        yield from chunk
        if len(chunk) < STREAM_CHUNK:
            return
        cursor = chunk[-1].seq


def audit_last_verification(*, user: Any) -> AuditVerification | None:
    _require(user)
    return AuditVerification.objects.order_by("-finished_at", "-id").first()


VERIFY_TASK = "audit.tasks.audit_verify_and_checkpoint"


@dataclass(frozen=True)
class Freshness:
    """How far the trail has moved since its last verification, and when the next one runs:
    an "intact" that is hours old says nothing about the events written since."""

    events_since: int
    scheduled: bool
    next_run_at: datetime | None

    @property
    def overdue(self) -> bool:
        return self.next_run_at is not None and self.next_run_at < timezone.now()


def audit_freshness(*, user: Any, verification: AuditVerification | None) -> Freshness:
    """The events after the verified tip (the sequence is gapless: one subtraction) and the
    next run of the verification's beat schedule, as an administrator may have changed it."""
    from django_celery_beat.models import PeriodicTask

    _require(user)
    tail = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    events_since = max(0, tail - (verification.tip_seq if verification else 0))
    task = (
        PeriodicTask.objects.filter(task=VERIFY_TASK, enabled=True)
        .select_related("interval", "crontab", "solar", "clocked")
        .first()
    )
    if task is None:
        return Freshness(events_since=events_since, scheduled=False, next_run_at=None)
    now = timezone.now()
    last_run = task.last_run_at or (verification.finished_at if verification else None) or now
    next_run_at = now + task.schedule.remaining_estimate(last_run)
    return Freshness(events_since=events_since, scheduled=True, next_run_at=next_run_at)


def audit_latest_checkpoint(*, user: Any) -> AuditCheckpoint | None:
    _require(user)
    return AuditCheckpoint.objects.order_by("-size", "-id").first()
