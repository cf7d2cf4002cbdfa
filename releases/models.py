"""Environments and their versioned policies, change requests, sign-offs and deployments.

State never changes on save: the services in `releases/services/` own every transition.
"""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from portal.models import ServiceAccount, Team
from portal.validators import SingleLine
from registry.models import SHA256_HEX, ModelVersion, RegisteredModel
from releases.kubernetes import validate_namespace, validate_namespaces
from releases.states import Kind, State


class Environment(models.Model):
    name = models.SlugField(max_length=50, unique=True)
    rank = models.PositiveSmallIntegerField(help_text="Position in the promotion path (dev=1).")
    description = models.TextField(blank=True)
    is_production = models.BooleanField(
        default=False,
        help_text=(
            "Production: its policy may not drop below GATEHOUSE_MIN_PROD_TEAMS approval teams, "
            "a peer review and a soak."
        ),
    )
    # Rule 14 at the door: the cluster's API server asks Gatehouse before a workload of these
    # namespaces runs (docs/deploy.md, Admission).
    admission_namespaces = models.CharField(
        max_length=500,
        blank=True,
        validators=[validate_namespaces],
        help_text=(
            "Governed Kubernetes/OpenShift namespaces, separated by spaces or commas: a workload "
            "there runs only with a model label and a digest the ledger deployed here."
        ),
    )
    # Rule 14 afterwards: where the runtime observation reads what really runs (issue 20).
    cluster_api_server = models.URLField(
        "cluster API server",
        max_length=300,
        blank=True,
        help_text=(
            "The Kubernetes/OpenShift API server read by the runtime observation, e.g. "
            "https://api.ocp.bank.example:6443. Blank with a namespace: the cluster the portal "
            "itself runs in (its pod's service account)."
        ),
    )
    cluster_namespace = models.CharField(
        max_length=63,
        blank=True,
        validators=[validate_namespace],
        help_text=(
            "The namespace whose workloads labelled gatehouse.io/model are compared with the "
            "ledger. Blank: not observed."
        ),
    )
    cluster_token_variable = models.CharField(
        max_length=100,
        blank=True,
        validators=[RegexValidator(r"^[A-Z_][A-Z0-9_]*\Z", "An environment variable's name.")],
        help_text=(
            "The environment variable of the portal's processes that holds a read-only bearer "
            "token for that API server. The token itself is never stored."
        ),
    )

    class Meta:
        ordering = ["rank", "name"]

    def __str__(self) -> str:
        return self.name


class EnvironmentPolicy(models.Model):
    """One version of an environment's rules. Never edited: a change writes the next version,
    and sign-offs and gate decisions point at the version they were given under."""

    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="policies")
    version = models.PositiveIntegerField()
    needs_change_request = models.BooleanField(default=True)
    needs_peer_review = models.BooleanField(default=True)
    approval_teams = models.ManyToManyField(Team, blank=True, related_name="+")
    soak_source = models.ForeignKey(
        Environment, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    soak_days = models.PositiveSmallIntegerField(default=0)
    soak_requires_healthy = models.BooleanField(
        default=False, help_text="Refuse the soak when any health check failed during it."
    )
    emergency_allowed = models.BooleanField(default=True)
    requires_validation = models.BooleanField(
        default=False,
        help_text="Refuse a build that no current, unrejected Model Risk validation covers, and "
        "any while a high finding of the model is past its remediation date.",
    )
    requires_verified_artifact = models.BooleanField(
        default=False,
        help_text="Refuse a build whose artifact no store has ever verified against its "
        "registered digest (registry/artifacts.py).",
    )
    exclude_commit_authors = models.BooleanField(default=False)
    retrospective_hours = models.PositiveSmallIntegerField(default=72)
    retrospective_excludes_authoriser = models.BooleanField(
        default=True,
        help_text="Whoever authorised an emergency change may not sign its retrospective.",
    )
    conflicts_block = models.BooleanField(
        default=False,
        help_text="Refuse a normal change while another change to the same model, or to a model "
        "it depends on or that depends on it, has an overlapping window (conflicting_change, "
        "dependency_conflict); otherwise the gate only warns.",
    )
    required_acr = models.CharField(
        "required assurance (acr)",
        max_length=200,
        blank=True,
        validators=[SingleLine()],
        help_text="Every signature must be confirmed at the identity provider with this "
        "authentication context class (acr), e.g. its two-factor level; a password typed again "
        "is then not enough. Blank: no requirement.",
    )
    # Issue 18: the path a change's risk level maps to (releases/risk.py scores it).
    standard_changes_allowed = models.BooleanField(
        default=False,
        help_text="Low-risk changes may be made under an approved standard change template: "
        "a peer review and the gate's rules, no team sign-offs.",
    )
    low_risk_approval_teams = models.ManyToManyField(
        Team,
        blank=True,
        related_name="+",
        help_text="The approval teams a low-risk normal change needs (some of the approval "
        "teams; never fewer than production's floor). None chosen: all of them.",
    )
    high_risk_team = models.ForeignKey(
        Team,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="A team whose sign-off a high-risk change needs as well, e.g. the change "
        "advisory board.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by_name = models.CharField(max_length=150)

    class Meta:
        ordering = ["environment", "-version"]
        get_latest_by = "version"
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "version"], name="environment_policy_version_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.environment.name} policy v{self.version}"

    def teams_for(self, change_request: "ChangeRequest") -> list[Team]:
        """The approval teams `change_request` needs under this policy, by its kind and the risk
        level it was submitted with: none for a standard change (its template had them all),
        the low-risk teams for a low-risk normal change where the policy names them, and the
        high-risk team besides for a high-risk change."""
        if change_request.kind == Kind.STANDARD:
            return []
        teams = list(self.approval_teams.all())
        level = change_request.risk_level
        if change_request.kind == Kind.NORMAL and level == RiskLevel.LOW:
            fewer = {team.pk for team in self.low_risk_approval_teams.all()}
            if fewer:
                teams = [team for team in teams if team.pk in fewer]
        added = self.high_risk_team_id
        if level == RiskLevel.HIGH and added is not None and all(t.pk != added for t in teams):
            teams.append(self.high_risk_team)
        return teams


class RiskLevel(models.TextChoices):
    """Where a change's risk score falls (the thresholds: releases/risk.py)."""

    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class FreezeWindow(models.Model):
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="freezes")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by_name = models.CharField(max_length=150)
    # A cancelled freeze stays on record: decisions taken while it stood must remain explainable.
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by_name = models.CharField(max_length=150, blank=True)
    cancel_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="freeze_order"
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.environment.name} freeze {self.starts_at:%Y-%m-%d} to {self.ends_at:%Y-%m-%d}"
        )


class MaintenanceWindow(models.Model):
    """A planned period in which an environment's platform is maintained (patching, upgrades):
    shown on the change calendar so that changes are planned around it. It refuses nothing."""

    environment = models.ForeignKey(
        Environment, on_delete=models.PROTECT, related_name="maintenance_windows"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    title = models.CharField(max_length=300, validators=[SingleLine()])
    created_at = models.DateTimeField(auto_now_add=True)
    created_by_name = models.CharField(max_length=150)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by_name = models.CharField(max_length=150, blank=True)
    cancel_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="maintenance_window_order"
            )
        ]

    def __str__(self) -> str:
        return f"{self.environment.name} maintenance {self.starts_at:%Y-%m-%d %H:%M}: {self.title}"


class ChangeRequest(models.Model):
    """A request to put one exact model version into one environment. Its human number is
    `CR-<id>`."""

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.NORMAL)
    state = models.CharField(max_length=32, choices=State.choices, default=State.DRAFT)
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="change_requests"
    )
    environment = models.ForeignKey(
        Environment, on_delete=models.PROTECT, related_name="change_requests"
    )
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="change_requests"
    )
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="change_requests")
    title = models.CharField(max_length=200, validators=[SingleLine()])
    justification = models.TextField()
    risk_impact = models.TextField(blank=True)
    test_evidence = models.TextField(blank=True)
    rollback_plan = models.TextField()
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    incident_ref = models.CharField(max_length=100, blank=True)
    retires_model = models.BooleanField(
        default=False, help_text="Once approved, the model is retired and goes nowhere any more."
    )
    content_digest = models.CharField(max_length=64)
    policy = models.ForeignKey(
        EnvironmentPolicy, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Issue 18: the template a standard change is made under, or that a template's approval
    # approves; and, for an instance, what its commits since the template's build touch
    # outside the template's paths, read from git at submission.
    standard_template = models.ForeignKey(
        "StandardChangeTemplate",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="change_requests",
    )
    template_diff = models.JSONField(default=dict, blank=True)
    # The risk score, its level and its factors as submitted, with the policy version it cites;
    # written by the submission only.
    risk_score = models.PositiveSmallIntegerField(null=True, blank=True)
    risk_level = models.CharField(max_length=8, choices=RiskLevel.choices, blank=True)
    risk_factors = models.JSONField(default=list, blank=True)
    risk_policy = models.ForeignKey(
        EnvironmentPolicy, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    retrospective_due_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["state", "environment"], name="cr_state_env"),
            # Reports that sync ask what changed since their last run (`updated_since`).
            models.Index(fields=["updated_at"], name="cr_updated_at"),
            models.Index(fields=["model_version", "environment", "state"], name="cr_version_env"),
            # The change calendar reads the windows that end after the period it shows begins.
            models.Index(fields=["window_end", "window_start"], name="cr_window"),
            # The gate asks for a model's first overdue emergency retrospective on every check;
            # without this it read every change request (1.4 ms of its 2.1 at 10,000 changes).
            models.Index(
                fields=["retrospective_due_at"],
                condition=Q(kind=Kind.EMERGENCY),
                name="cr_emergency_retrospective",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(window_start__isnull=True)
                | Q(window_end__isnull=True)
                | Q(window_end__gt=models.F("window_start")),
                name="cr_window_order",
            ),
            models.CheckConstraint(
                condition=Q(content_digest="") | Q(content_digest__regex=SHA256_HEX),
                name="cr_content_digest",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    @property
    def number(self) -> str:
        return f"CR-{self.pk}"


class StandardChangeTemplate(models.Model):
    """Issue 18, rule 18: a change that may be made again and again once approved. It names the
    model, the environments, the build it was approved with (`base_version`) and what may vary:
    a new build from the same repository whose build URL starts with `pipeline`, and whose
    commits since the base touch only `allowed_paths` (globs, one a line). It is approved once,
    by its change request of kind `standard_template`, and serves until `valid_until`, for
    `max_uses` deployments, unless revoked."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="+")
    environments = models.ManyToManyField(Environment, related_name="standard_templates")
    base_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    pipeline = models.CharField(
        max_length=500,
        validators=[SingleLine()],
        help_text="The start of the build URL of every instance's build (its CI pipeline).",
    )
    allowed_paths = models.TextField(
        help_text="The paths the commits of an instance may touch: globs, one a line "
        "(data/**, configs/*.yaml)."
    )
    valid_until = models.DateTimeField()
    max_uses = models.PositiveIntegerField()
    created_at = models.DateTimeField()
    created_by_name = models.CharField(max_length=150)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by_name = models.CharField(max_length=150, blank=True)
    revoke_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(max_uses__gte=1), name="standard_template_max_uses"),
        ]

    def __str__(self) -> str:
        return f"ST-{self.pk} {self.model.name}"

    @property
    def number(self) -> str:
        return f"ST-{self.pk}"

    @property
    def path_globs(self) -> list[str]:
        return [line.strip() for line in self.allowed_paths.splitlines() if line.strip()]


class SignOffKind(models.TextChoices):
    PEER_REVIEW = "peer_review", "Peer review"
    APPROVAL = "approval", "Approval"
    EMERGENCY_AUTHORISATION = "emergency_authorisation", "Emergency authorisation"
    RETROSPECTIVE = "retrospective", "Retrospective review"


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


class SignOff(models.Model):
    """An electronic signature: who, for which team, what they decided, what it means, and the
    digest of the content they saw. Voided, never deleted: when the request is edited, or when
    the signer withdraws it (`withdrawn_by`, the signer's own act; `voided_reason` says why).
    A delegate's approval names the absent approver it was given for (`on_behalf_of`)."""

    change_request = models.ForeignKey(
        ChangeRequest, on_delete=models.PROTECT, related_name="sign_offs"
    )
    kind = models.CharField(max_length=32, choices=SignOffKind.choices)
    team = models.ForeignKey(
        Team, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    signer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sign_offs"
    )
    decision = models.CharField(max_length=16, choices=Decision.choices)
    comment = models.TextField(blank=True)
    meaning = models.CharField(max_length=300)
    content_digest = models.CharField(max_length=64)
    policy = models.ForeignKey(EnvironmentPolicy, on_delete=models.PROTECT, related_name="+")
    reauthenticated = models.BooleanField(default=False)
    # Set when the signer confirmed at the identity provider (not with a password): when they
    # signed in there again, and at which assurance.
    auth_time = models.DateTimeField(null=True, blank=True)
    acr = models.CharField(max_length=200, blank=True)
    signed_at = models.DateTimeField()
    voided_at = models.DateTimeField(null=True, blank=True)
    voided_reason = models.CharField(max_length=300, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="delegated_sign_offs",
        help_text="The absent approver whose delegate the signer was (portal.Absence).",
    )

    class Meta:
        ordering = ["signed_at"]
        indexes = [
            # The approvals of the last days, for the sign-off latency of /metrics.
            models.Index(
                fields=["signed_at"],
                condition=Q(kind="approval", voided_at__isnull=True),
                name="signoff_approval_time",
            ),
        ]
        constraints = [
            # A delegate gives a team approval only, never for themself, and a principal is
            # represented once per change, as a signer is.
            models.CheckConstraint(
                condition=Q(on_behalf_of__isnull=True)
                | (Q(kind="approval") & ~Q(on_behalf_of=models.F("signer"))),
                name="signoff_delegated_approval",
            ),
            models.UniqueConstraint(
                fields=["change_request", "on_behalf_of"],
                condition=Q(voided_at__isnull=True, on_behalf_of__isnull=False),
                name="signoff_one_per_principal",
            ),
            # Only the signer withdraws, and a withdrawn sign-off is void for every reader.
            models.CheckConstraint(
                condition=Q(withdrawn_by__isnull=True)
                | Q(withdrawn_by=models.F("signer"), voided_at__isnull=False),
                name="signoff_withdrawn_by_its_signer",
            ),
            models.UniqueConstraint(
                fields=["change_request", "signer"],
                condition=Q(voided_at__isnull=True) & ~Q(kind="retrospective"),
                name="signoff_one_per_person",
            ),
            models.UniqueConstraint(
                fields=["change_request", "kind", "team"],
                condition=Q(voided_at__isnull=True),
                name="signoff_one_per_team",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.change_request.number} by {self.signer}"


class SignatureStepUp(models.Model):
    """A signature waiting while its signer signs in again at the identity provider (rule 6 for
    single sign-on): what they chose on the sign form, and the state, nonce and PKCE verifier of
    the request that sent them there, bound to this signature alone. Taken once (`taken_at`) by
    the provider's answer; a second answer with the same state is a replay."""

    change_request = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="+")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # The absent approver a delegate signs for, as on the sign form (issue 17, delegation).
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    decision = models.CharField(max_length=16, choices=Decision.choices)
    comment = models.TextField(blank=True)
    content_digest = models.CharField(max_length=64)
    acr_values = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=64, unique=True)
    nonce = models.CharField(max_length=64)
    code_verifier = models.CharField(max_length=128)
    issued_at = models.DateTimeField()
    taken_at = models.DateTimeField(null=True, blank=True)
    sign_off = models.OneToOneField(
        SignOff, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    refusal = models.CharField(max_length=50, blank=True)

    def __str__(self) -> str:
        return f"Signature of {self.change_request.number} waiting at the identity provider"


class DeploymentKind(models.TextChoices):
    DEPLOY = "deploy", "Deploy"
    ROLLBACK = "rollback", "Rollback"


class DeploymentStatus(models.TextChoices):
    STARTED = "started", "Started"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ROLLED_BACK = "rolled_back", "Rolled back"


class Deployment(models.Model):
    """One attempt to put a model version into an environment. What is live is the latest
    deployment there with a `succeeded_at`; a later rollback keeps that time, so the past stays
    answerable."""

    environment = models.ForeignKey(
        Environment, on_delete=models.PROTECT, related_name="deployments"
    )
    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="deployments")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="deployments"
    )
    change_request = models.ForeignKey(
        ChangeRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="deployments"
    )
    kind = models.CharField(max_length=16, choices=DeploymentKind.choices)
    rollback_of = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="rollbacks"
    )
    status = models.CharField(
        max_length=16, choices=DeploymentStatus.choices, default=DeploymentStatus.STARTED
    )
    started_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    started_by_service = models.ForeignKey(
        ServiceAccount, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    started_by_name = models.CharField(max_length=150)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    pipeline_url = models.URLField(max_length=500, blank=True)
    health_url = models.URLField(max_length=500, blank=True)
    detail = models.TextField(blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(
                fields=["environment", "model", "-succeeded_at"],
                condition=Q(succeeded_at__isnull=False),
                name="deployment_live",
            ),
            models.Index(fields=["change_request", "status"], name="deployment_change"),
            models.Index(fields=["model", "environment", "-started_at"], name="deployment_history"),
            # Counted by status at every scrape of /metrics: an index-only scan.
            models.Index(fields=["environment", "kind", "status"], name="deployment_status"),
            # The change calendar reads a period's deployments across every environment.
            models.Index(fields=["started_at"], name="deployment_started"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.model_version} to {self.environment}"


class HealthCheck(models.Model):
    deployment = models.ForeignKey(
        Deployment, on_delete=models.CASCADE, related_name="health_checks"
    )
    checked_at = models.DateTimeField()
    ok = models.BooleanField()
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    reported_sha256 = models.CharField(max_length=64, blank=True)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-checked_at"]
        indexes = [models.Index(fields=["deployment", "-checked_at"], name="healthcheck_latest")]

    def __str__(self) -> str:
        return f"{'ok' if self.ok else 'down'} at {self.checked_at:%Y-%m-%d %H:%M}"


class GatePurpose(models.TextChoices):
    CHECK = "check", "Gate check"
    DEPLOYMENT = "deployment", "Deployment start"
    # Asked by the platform itself, so a pipeline that skips its gate call is still stopped.
    GITLAB_APPROVAL = "gitlab_approval", "GitLab deployment approval"
    GITHUB_PROTECTION = "github_rule", "GitHub deployment protection rule"
    ADMISSION = "admission", "Kubernetes admission"


class GateDecision(models.Model):
    """One answer of the deployment gate, kept with the policy version it applied (rule 13), so
    an auditor can see why a deployment was let through or refused."""

    purpose = models.CharField(max_length=16, choices=GatePurpose.choices)
    environment = models.ForeignKey(
        Environment, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    model = models.ForeignKey(
        RegisteredModel, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    change_request = models.ForeignKey(
        ChangeRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="gate_decisions",
    )
    policy = models.ForeignKey(
        EnvironmentPolicy, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    deployment = models.OneToOneField(
        Deployment, on_delete=models.PROTECT, null=True, blank=True, related_name="gate_decision"
    )
    allowed = models.BooleanField()
    reasons = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    question = models.JSONField(default=dict, blank=True)
    asked_by_name = models.CharField(max_length=150)
    decided_at = models.DateTimeField()

    class Meta:
        ordering = ["-decided_at", "-id"]
        indexes = [
            models.Index(fields=["environment", "-decided_at"], name="gate_decision_env"),
            # When each way of asking last asked, per environment (the environment page).
            models.Index(
                fields=["environment", "purpose", "-decided_at"], name="gate_decision_purpose"
            ),
        ]

    def __str__(self) -> str:
        verdict = "allowed" if self.allowed else "denied"
        return f"Gate {verdict} at {self.decided_at:%Y-%m-%d %H:%M}"


class GateTally(models.Model):
    """Running totals of the gate's decisions, read by `/metrics` (docs/operations.md, Metrics):
    a row with an empty `code` counts the decisions of one environment, purpose and answer; a
    row with a code counts the refusals that named it. Kept by `gate_decision_tally` in the
    transaction that records each decision and its audit event, so that a scrape reads a few
    rows rather than every decision on the trail. Operational figures, not evidence: the
    decisions and their events are the record, and the migration that made this table summed
    the decisions recorded before it."""

    environment = models.CharField(
        max_length=50, blank=True, help_text="Its name then; empty when none was found."
    )
    purpose = models.CharField(max_length=16, choices=GatePurpose.choices)
    allowed = models.BooleanField()
    code = models.CharField(max_length=64, blank=True)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "purpose", "allowed", "code"], name="gate_tally_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} {self.environment} {self.code or self.allowed}: {self.count}"


class BatchRun(models.Model):
    """A batch scoring job (YARN, Airflow, cron) attesting at its start which artifact digest
    it runs in an environment (issue 20, rule 14): the portal's answer is kept with the run."""

    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="+")
    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="+")
    artifact_sha256 = models.CharField(max_length=64)
    job_id = models.CharField(max_length=200)
    host = models.CharField(max_length=255)
    # The registered build with that digest (None: no build of the model has it).
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # What was live when the run started (None: nothing).
    live_deployment = models.ForeignKey(
        Deployment, on_delete=models.PROTECT, null=True, blank=True, related_name="batch_runs"
    )
    allowed = models.BooleanField()
    code = models.CharField(max_length=32, blank=True, help_text="Why not, when not allowed.")
    started_at = models.DateTimeField()
    reported_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reported_by_service = models.ForeignKey(
        ServiceAccount, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reported_by_name = models.CharField(max_length=150)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "model", "job_id", "host"], name="batch_run_once"
            ),
            models.CheckConstraint(
                condition=Q(artifact_sha256__regex=SHA256_HEX), name="batch_run_sha256"
            ),
        ]
        indexes = [
            models.Index(fields=["environment", "model", "-started_at"], name="batch_run_recent")
        ]

    def __str__(self) -> str:
        return f"Run {self.job_id} of {self.model} in {self.environment}"


class DigestSource(models.TextChoices):
    ANNOTATION = "annotation", "Digest annotation"
    IMAGE = "image", "Image digest of its pods"
    UNKNOWN = "unknown", "No digest found"


class WorkloadKind(models.TextChoices):
    """The workload kinds runtime observation reads; workloads of two kinds may share a name in
    one namespace and are still two workloads."""

    DEPLOYMENT = "Deployment", "Deployment"
    STATEFUL_SET = "StatefulSet", "StatefulSet"
    DAEMON_SET = "DaemonSet", "DaemonSet"
    CRON_JOB = "CronJob", "CronJob"


class ClusterReading(models.Model):
    """The runtime observation's latest look at an environment's namespace (issue 20): when it
    last tried, when it last read the workloads, and why the last try failed. A failed read
    keeps the observations of the last good one; the page says how old they are."""

    environment = models.OneToOneField(
        Environment, on_delete=models.PROTECT, related_name="cluster_reading"
    )
    namespace = models.CharField(max_length=63)
    attempted_at = models.DateTimeField()
    succeeded_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    # Workloads with the model label naming no registered model, as last read.
    unknown_models = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        state = f"failing: {self.error}" if self.error else "read"
        return f"{self.environment} cluster {state}"


class ModelNotRunning(models.Model):
    """A model live per the ledger that a read of the environment's namespace found served by
    no workload, from `since` until a read finds it served again; then the row goes, and the
    trail keeps both ends (`runtime.not_running`, `runtime.running_again`). One row per
    environment and model: people are told once per outage, not at every poll."""

    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="+")
    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="+")
    # The live deployment when the outage was found.
    deployment = models.ForeignKey("Deployment", on_delete=models.PROTECT, related_name="+")
    since = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["environment", "model"], name="model_not_running_once")
        ]

    def __str__(self) -> str:
        return f"{self.model} not running in {self.environment} since {self.since:%Y-%m-%d %H:%M}"


class WorkloadObservation(models.Model):
    """A workload seen serving a model's digest in an environment's namespace, from
    `first_seen_at` to `last_seen_at` (issue 20, rule 14): one row per workload and digest, so
    a new digest is a new observation and an old one keeps its dates. `live_deployment` and
    `matches_ledger` are the comparison at the last sighting."""

    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="+")
    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="+")
    namespace = models.CharField(max_length=63)
    kind = models.CharField(max_length=16, choices=WorkloadKind.choices)
    workload = models.CharField(max_length=253, help_text="The workload's name.")
    served_sha256 = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=16, choices=DigestSource.choices)
    ready_replicas = models.PositiveIntegerField(default=0)
    # Whether the workload served its model at the last sighting (a suspended CronJob does
    # not): only a serving workload keeps its model from being "not running".
    serving = models.BooleanField(default=True)
    live_deployment = models.ForeignKey(
        "Deployment", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    matches_ledger = models.BooleanField()
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["environment", "model", "workload", "-last_seen_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "namespace", "kind", "workload", "model", "served_sha256"],
                name="workload_observation_once",
            ),
            models.CheckConstraint(
                condition=Q(served_sha256="") | Q(served_sha256__regex=SHA256_HEX),
                name="workload_observation_sha256",
            ),
        ]
        indexes = [
            models.Index(fields=["environment", "-last_seen_at"], name="workload_observation_seen")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.workload} serving {self.model} in {self.environment}"


class UnauthorisedChange(models.Model):
    """Rule 14: a live deployment reported serving an artifact digest that the ledger did not put
    there. It stays flagged until someone reviews it."""

    deployment = models.ForeignKey(
        Deployment, on_delete=models.PROTECT, related_name="unauthorised_changes"
    )
    # What reported the digest: a health probe, a batch run's attestation or a workload the
    # runtime observation found.
    health_check = models.ForeignKey(
        HealthCheck, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    batch_run = models.ForeignKey(
        BatchRun, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    workload_observation = models.ForeignKey(
        "WorkloadObservation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="flags",
    )
    # Or a source above this app (integrations: an MLflow alias moved), named in words.
    observed_by = models.CharField(
        max_length=300, blank=True, help_text="What reported it, when not a probe or a run."
    )
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="+")
    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="+")
    expected_sha256 = models.CharField(max_length=64)
    reported_sha256 = models.CharField(max_length=64)
    detected_at = models.DateTimeField()
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_by_name = models.CharField(max_length=150, blank=True)
    review_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-detected_at"]
        indexes = [
            models.Index(
                fields=["environment", "model"],
                condition=Q(reviewed_at__isnull=True),
                name="unauthorised_open",
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "reported_sha256"],
                condition=Q(reviewed_at__isnull=True),
                name="unauthorised_one_open_per_digest",
            ),
            models.CheckConstraint(
                condition=Q(health_check__isnull=False)
                | Q(batch_run__isnull=False)
                | Q(workload_observation__isnull=False)
                | ~Q(observed_by=""),
                name="unauthorised_has_a_witness",
            ),
        ]

    def __str__(self) -> str:
        return f"Unauthorised digest {self.reported_sha256[:12]} in {self.environment}"


class ReconciliationFinding(models.Model):
    """Rule 17: one field of one row that the audit trail does not explain, as
    `manage.py audit_reconcile` found it. Open until a run finds the row explained again; while
    open, the gate refuses the change request it concerns (or any change under the policy it
    concerns) with `record_inconsistent`."""

    object_type = models.CharField(max_length=100, help_text="app.model of the row.")
    object_id = models.CharField(max_length=100)
    field = models.CharField(max_length=100)
    expected = models.TextField(help_text="What the audit trail says.")
    found = models.TextField(help_text="What the row holds.")
    last_event_seq = models.BigIntegerField(null=True, blank=True)
    change_request = models.ForeignKey(
        ChangeRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reconciliation_findings",
    )
    policy = models.ForeignKey(
        EnvironmentPolicy, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-first_seen_at", "-id"]
        indexes = [
            models.Index(
                fields=["change_request"],
                condition=Q(resolved_at__isnull=True),
                name="finding_open_change",
            ),
            models.Index(
                fields=["policy"], condition=Q(resolved_at__isnull=True), name="finding_open_policy"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["object_type", "object_id", "field"],
                condition=Q(resolved_at__isnull=True),
                name="finding_one_open_per_field",
            )
        ]

    def __str__(self) -> str:
        return f"{self.object_type} {self.object_id}.{self.field}: not what the trail says"


class CalendarFeed(models.Model):
    """The secret address of one person's or one team's change calendar in iCalendar form, for
    Outlook and the like, which cannot sign in. Only the sha256 of the token is kept; its owner
    revokes it or issues a new one (which revokes the old)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="calendar_feeds",
    )
    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, null=True, blank=True, related_name="calendar_feeds"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    created_by_name = models.CharField(max_length=150)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by_name = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, team__isnull=True)
                | Q(user__isnull=True, team__isnull=False),
                name="calendar_feed_one_owner",
            ),
            models.CheckConstraint(
                condition=Q(token_hash__regex=SHA256_HEX), name="calendar_feed_token_hash_hex"
            ),
            models.UniqueConstraint(
                fields=["user"],
                condition=Q(revoked_at__isnull=True, user__isnull=False),
                name="calendar_feed_one_per_user",
            ),
            models.UniqueConstraint(
                fields=["team"],
                condition=Q(revoked_at__isnull=True, team__isnull=False),
                name="calendar_feed_one_per_team",
            ),
        ]

    def __str__(self) -> str:
        owner = self.team.name if self.team_id else self.user.get_username()
        return f"Calendar feed of {owner}"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
