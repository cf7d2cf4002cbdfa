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


class TicketSystem(models.TextChoices):
    SERVICENOW = "servicenow", "ServiceNow"
    JIRA = "jira", "Jira"


class ChangeTicket(models.Model):
    """The record that mirrors one change request in a ticket system: a ServiceNow change
    request (`external_id` its sys_id, `reference` its number) or a Jira issue (its id and key).
    Made when the change's first transition is taken from the trail, linked once the ticket
    system has the record; its row is also what one delivery at a time leases."""

    change_request = models.ForeignKey(
        "releases.ChangeRequest", on_delete=models.PROTECT, related_name="tickets"
    )
    system = models.CharField(max_length=16, choices=TicketSystem.choices)
    external_id = models.CharField(max_length=100, blank=True)
    reference = models.CharField(max_length=100, blank=True)
    url = models.URLField(max_length=500, blank=True)
    linked_at = models.DateTimeField(null=True, blank=True)
    last_synced = models.ForeignKey(
        "TicketTransition", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    synced_at = models.DateTimeField(null=True, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["change_request", "system"], name="change_ticket_one_per_system"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_system_display()} {self.reference or '(not linked yet)'}"


class TransitionKind(models.TextChoices):
    CREATE = "create", "Create"
    UPDATE = "update", "Update"


class TicketTransition(models.Model):
    """One change request event to bring to its ticket: written in the transaction that claims
    the event from the trail, once per (ticket, event), which is the idempotency key of the
    transition. `change` is the change request as it stood then, in the ticket system's terms
    of no system in particular (integrations.tickets.change_snapshot)."""

    ticket = models.ForeignKey(ChangeTicket, on_delete=models.PROTECT, related_name="transitions")
    event = models.ForeignKey("audit.AuditEvent", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=TransitionKind.choices)
    summary = models.CharField(max_length=300)
    resolution = models.TextField(blank=True)
    change = models.JSONField()
    claimed_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["event_id"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "event"], name="ticket_transition_once"),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(delivered_at__isnull=True),
                name="ticket_transition_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ticket.change_request.number} #{self.event_id}: {self.summary}"


class TicketDeliveryAttempt(models.Model):
    """One request to the ticket system on behalf of a transition, and what came back: the
    delivery log that staff read in the admin."""

    transition = models.ForeignKey(
        TicketTransition, on_delete=models.PROTECT, related_name="delivery_attempts"
    )
    attempt = models.PositiveIntegerField()
    at = models.DateTimeField()
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    ok = models.BooleanField()
    detail = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.status or 'no answer'}"
