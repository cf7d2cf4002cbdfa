from django.conf import settings
from django.db import models

from audit.models import AuditEvent
from integrations.webhook_secrets import SealedTextField
from portal.models import Team
from portal.validators import SingleLine


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


class WebhookKind(models.TextChoices):
    TEAMS = "teams", "Microsoft Teams (card)"
    SLACK = "slack", "Slack (blocks)"
    STANDARD = "standard", "Standard Webhooks (signed JSON)"


class WebhookEventType(models.TextChoices):
    """What a subscription may ask to be told: the moments people act on. Where an audit action
    says it alone, the type carries its name; the others are read from the event's data (a
    signature that approved the change, one that left it waiting for the next team)."""

    CHANGE_REQUEST_SUBMITTED = "change_request.submitted", "Change request submitted"
    CHANGE_REQUEST_WAITING = "change_request.waiting", "Change request waits for a sign-off"
    CHANGE_REQUEST_SIGNED = "change_request.signed", "Sign-off given"
    SIGN_OFF_WITHDRAWN = "sign_off.withdrawn", "Sign-off withdrawn"
    CHANGE_REQUEST_APPROVED = "change_request.approved", "Change request approved"
    CHANGE_REQUEST_REJECTED = "change_request.rejected", "Change request rejected"
    CHANGE_REQUEST_CANCELLED = "change_request.cancelled", "Change request cancelled"
    CHANGE_REQUEST_EXPIRED = "change_request.expired", "Change request expired unused"
    CHANGE_REQUEST_DEPLOYED = "change_request.deployed", "Change request deployed"
    DEPLOYMENT_FAILED = "deployment.failed", "Deployment failed"
    DEPLOYMENT_ROLLED_BACK = "deployment.rolled_back", "Rolled back"
    UNAUTHORISED_CHANGE = "deployment.unauthorised_change", "Unauthorised change detected"
    RUNTIME_NOT_RUNNING = "runtime.not_running", "Live model served by no workload"
    RUNTIME_RUNNING_AGAIN = "runtime.running_again", "Live model served again"
    CLUSTER_UNREACHABLE = "cluster.unreachable", "Cluster namespace cannot be read"
    CLUSTER_READABLE_AGAIN = "cluster.readable_again", "Cluster namespace read again"
    EMERGENCY_SUBMITTED = "emergency.submitted", "Emergency change filed"
    RETROSPECTIVE_ESCALATED = (
        "change_request.retrospective_escalated",
        "Emergency change's retrospective escalated",
    )


# The type of the message "Send test" delivers; nobody subscribes to it.
TEST_EVENT_TYPE = "gatehouse.test"


class WebhookSubscription(models.Model):
    """Where to tell what: a Teams or Slack channel's incoming webhook, or a signed Standard
    Webhooks endpoint. Changed only through integrations.webhooks, every change audited."""

    name = models.CharField(max_length=100, unique=True, validators=[SingleLine()])
    kind = models.CharField(max_length=16, choices=WebhookKind.choices)
    url = SealedTextField(help_text="Stored encrypted; a chat URL is a credential.")
    url_hint = models.CharField(max_length=300, help_text="Scheme and host: what pages show.")
    event_types = models.JSONField(default=list)
    environments = models.JSONField(
        default=list, blank=True, help_text="Names of the environments to tell about; empty: all."
    )
    team = models.ForeignKey(
        Team,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The team whose service tokens may manage it; administrators manage all.",
    )
    is_active = models.BooleanField(default=True)
    starts_after_seq = models.BigIntegerField(
        default=0, help_text="The trail's tail when it was made: it is told what comes after."
    )
    secret = SealedTextField(blank=True)
    previous_secret = SealedTextField(blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_by_name = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=WebhookKind.values), name="webhook_kind_known"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled (subscription deactivated)"


class WebhookDelivery(models.Model):
    """One message to one subscription about one audit event, written in the transaction that
    claims the event (integrations.outbox): never twice for the same pair. `body` is exactly
    what is sent, the same on every attempt, and `message_id` is its `webhook-id`."""

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.PROTECT, related_name="deliveries"
    )
    event = models.ForeignKey(
        AuditEvent, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    message_id = models.CharField(max_length=40, unique=True)
    event_type = models.CharField(max_length=64)
    body = models.TextField()
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "event"], name="webhook_delivery_once"),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="webhook_delivery_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} to {self.subscription}"


class WebhookAttempt(models.Model):
    """One POST of a delivery and what came of it: the delivery log."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveSmallIntegerField()
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField()
    answer = models.CharField(max_length=500, blank=True, help_text="The start of the answer.")
    retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_once"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class MlflowVersion(models.Model):
    """The link back from a Gatehouse version to the MLflow model version it was imported from
    (integrations/mlflow_source.py): which server, model and version, and the run that made it.
    Its presence is what makes the next import skip that version."""

    tracking_uri = models.CharField(max_length=500)
    mlflow_model = models.CharField(max_length=256)
    mlflow_version = models.CharField(max_length=20)
    run_id = models.CharField(max_length=64)
    model_version = models.OneToOneField(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="mlflow_source"
    )
    url = models.URLField(max_length=1000, blank=True, help_text="The version's page in MLflow.")
    imported_at = models.DateTimeField()

    class Meta:
        ordering = ["mlflow_model", "imported_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tracking_uri", "mlflow_model", "mlflow_version"],
                name="mlflow_version_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.mlflow_model} v{self.mlflow_version} → {self.model_version}"


class MlflowPromotion(models.Model):
    """One observed move of an MLflow alias or stage that stands for an environment (the
    latest row per label is where it points now). `authorised` says whether the version it
    points at was the one live there; a move that was not raised `flag`, once."""

    tracking_uri = models.CharField(max_length=500)
    mlflow_model = models.CharField(max_length=256)
    label = models.CharField(max_length=100, help_text="alias:champion or stage:Production")
    mlflow_version = models.CharField(max_length=20)
    environment = models.ForeignKey(
        "releases.Environment", on_delete=models.PROTECT, related_name="+"
    )
    model_version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    authorised = models.BooleanField()
    flag = models.ForeignKey(
        "releases.UnauthorisedChange",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    observed_at = models.DateTimeField()

    class Meta:
        ordering = ["-observed_at", "-pk"]
        indexes = [models.Index(fields=["tracking_uri", "mlflow_model", "label", "-observed_at"])]

    def __str__(self) -> str:
        return f"{self.mlflow_model} {self.label} → v{self.mlflow_version}"
