"""Organisation: teams, who holds which role in them, and the service accounts CI uses."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from portal.validators import SingleLine


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True, validators=[SingleLine()])
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    MEMBER = "member", "Member"
    APPROVER = "approver", "Approver"
    EMERGENCY_APPROVER = "emergency_approver", "Emergency approver"


class Membership(models.Model):
    """A user's place in a team. Every member may peer-review; the flags add sign-off rights."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    is_approver = models.BooleanField(default=False)
    is_emergency_approver = models.BooleanField(default=False)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team__name", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["user", "team"], name="membership_unique_user_team"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"

    @property
    def roles(self) -> list[str]:
        roles = [Role.MEMBER.value]
        if self.is_approver:
            roles.append(Role.APPROVER.value)
        if self.is_emergency_approver:
            roles.append(Role.EMERGENCY_APPROVER.value)
        return roles

    @property
    def role_labels(self) -> list[str]:
        return [Role(role).label for role in self.roles]


class ProviderIdentity(models.Model):
    """The person the bank's identity provider knows as `subject` at `issuer` is this user.
    Single sign-on matches people by this pair alone, never by e-mail or username, which
    another account or another provider may also carry."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="provider_identities"
    )
    issuer = models.URLField(max_length=300)
    subject = models.CharField(max_length=255)
    linked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "subject"], name="provider_identity_unique_subject"
            ),
            models.UniqueConstraint(
                fields=["issuer", "user"], name="provider_identity_one_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} at {self.issuer}"


class Absence(models.Model):
    """An approver away from `starts_on` to `ends_on` (both included, dates in the portal's time
    zone) whose approvals for `team` their `delegate`, an approver of the same team, may give
    meanwhile on their behalf. Cancelled, never deleted: a signature given under it must stay
    explainable."""

    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="absences"
    )
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="absences")
    delegate = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="delegations"
    )
    starts_on = models.DateField()
    ends_on = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by_name = models.CharField(
        max_length=150, help_text="Who recorded it: the person, a change manager or an admin."
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by_name = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-starts_on", "-id"]
        indexes = [
            models.Index(fields=["person", "team", "ends_on"], name="absence_person"),
            models.Index(fields=["delegate", "ends_on"], name="absence_delegate"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__gte=models.F("starts_on")), name="absence_order"
            ),
            models.CheckConstraint(
                condition=~Q(delegate=models.F("person")), name="absence_delegate_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.person} away {self.starts_on} to {self.ends_on} ({self.team})"

    def covers(self, day) -> bool:
        return self.cancelled_at is None and self.starts_on <= day <= self.ends_on


class Scope(models.TextChoices):
    REGISTRY_WRITE = "registry:write", "Register datasets, models and builds"
    DEPLOYMENTS_WRITE = "deployments:write", "Report deployments and roll back"
    GATE_READ = "gate:read", "Ask the deployment gate"
    AUDIT_READ = "audit:read", "Read the audit trail"
    VALIDATIONS_WRITE = "validations:write", "Open validations and record findings (Model Risk)"
    WEBHOOKS_WRITE = "webhooks:write", "Manage the chat and webhook subscriptions of its teams"
    METRICS_READ = "metrics:read", "Read the operational metrics (Prometheus)"
    RUNS_WRITE = "runs:write", "Attest batch runs (what a scoring job runs)"
    # Reports: the change record without the trail (IPs, user agents) and without any write.
    READ = "read", "Read change requests, sign-offs, deployments, environments and notifications"


class ServiceAccount(models.Model):
    """A non-human caller such as a CI/CD pipeline; it acts through bearer tokens, on the models
    of its own team and of the teams granted to it, in the environments named in `environments`
    (all when empty): DESIGN.md rule 15. Environments are kept by name, as `releases` (which
    judges them) sits above this layer."""

    name = models.SlugField(max_length=100, unique=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="service_accounts")
    scopes = models.JSONField(default=list)
    granted_teams = models.ManyToManyField(
        Team,
        blank=True,
        related_name="granted_service_accounts",
        help_text="Other teams whose models this account may also act on.",
    )
    environments = models.JSONField(
        default=list,
        blank=True,
        help_text="Names of the environments it may deploy to, roll back in and report results "
        "for; empty for all.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    is_authenticated = True
    is_anonymous = False
    is_service_account = True

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def has_scope(self, scope: str) -> bool:
        return self.is_active and scope in self.scopes

    def acts_for_team(self, team_id: int) -> bool:
        return team_id == self.team_id or self.granted_teams.filter(pk=team_id).exists()

    def acts_in_environment(self, name: str) -> bool:
        return not self.environments or name in self.environments


class ServiceToken(models.Model):
    """A bearer token. Only its sha256 is stored; the prefix finds the row without the secret."""

    service_account = models.ForeignKey(
        ServiceAccount, on_delete=models.CASCADE, related_name="tokens"
    )
    prefix = models.CharField(max_length=16, unique=True)
    token_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(token_hash__regex=r"^[0-9a-f]{64}$"),  # noqa: S106  # nosec B106
                name="service_token_hash_hex",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service_account.name} token {self.prefix}…"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class Notification(models.Model):
    """A message to one person, in the portal and by mail. The row is also the outbox: a mail not
    yet sent has no `emailed_at`, so a broker outage delays delivery but never loses it."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    key = models.CharField(max_length=200, help_text="The event; one notification per person.")
    subject = models.CharField(max_length=200)
    body = models.TextField()
    link = models.CharField(max_length=500, blank=True)
    reason = models.CharField(max_length=300, help_text="Why this person was told.")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["recipient", "key"], name="notification_once"),
        ]
        indexes = [
            models.Index(fields=["recipient", "read_at"], name="notification_unread"),
            models.Index(
                fields=["created_at"],
                condition=Q(emailed_at__isnull=True),
                name="notification_outbox",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject} for {self.recipient}"


class IdempotentRequest(models.Model):
    """The first answer to a POST sent with an `Idempotency-Key`, kept so that a retry with the
    same key and body gets that answer again instead of acting twice (DESIGN.md rule 15)."""

    caller = models.CharField(max_length=64, help_text="service:<id> or user:<id>.")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="sha256 of method, path and body.")
    status_code = models.PositiveSmallIntegerField()
    body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["caller", "key"], name="idempotency_key_once"),
        ]

    def __str__(self) -> str:
        return f"{self.key} by {self.caller}"
