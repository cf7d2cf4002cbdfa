from django.db import models


class TrailCursor(models.Model):
    """How far along the audit trail one consumer (a ticket system, the webhooks) has read.

    The trail is the outbox: every state change appends its event in its own transaction, so a
    consumer that moves its cursor in the same transaction as it records what it makes of the
    events takes each event exactly once, whatever fails in between."""

    name = models.CharField(max_length=100, unique=True)
    last_seq = models.BigIntegerField(default=0)
    moved_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.last_seq}"
