"""Read the audit trail as an outbox: each consumer takes every event it cares about once.

Events are appended under one lock and commit in `seq` order (audit.services.audit_record), so no
event can later appear below a sequence number a reader has already seen committed. A consumer
calls `claim_events` inside its own transaction and, in that same transaction, writes what it
makes of them (delivery rows keyed by the event): a crash or a broker outage rolls both back, and
the next run takes the same events again. Nothing is lost and nothing is taken twice.
"""

from collections.abc import Collection

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit.models import AuditEvent
from integrations.models import TrailCursor


def claim_events(*, consumer: str, actions: Collection[str], limit: int = 500) -> list[AuditEvent]:
    """The next events with one of `actions` after `consumer`'s cursor, oldest first, and the
    cursor moved past them. Concurrent claims by the same consumer wait for each other."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("claim_events must run inside the consumer's transaction.")
    TrailCursor.objects.get_or_create(name=consumer)
    cursor = TrailCursor.objects.select_for_update().get(name=consumer)
    # The tail is read first: an event committed after it waits for the next claim.
    tail = AuditEvent.objects.aggregate(tail=Max("seq"))["tail"] or 0
    events = list(
        AuditEvent.objects.filter(
            seq__gt=cursor.last_seq, seq__lte=tail, action__in=list(actions)
        ).order_by("seq")[:limit]
    )
    reached = events[-1].seq if len(events) == limit else max(tail, cursor.last_seq)
    if reached != cursor.last_seq:
        cursor.last_seq = reached
        cursor.moved_at = timezone.now()
        cursor.save(update_fields=["last_seq", "moved_at"])
    return events
