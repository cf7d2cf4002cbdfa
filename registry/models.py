"""The model registry: every version tied to one commit, one build, one artifact digest, its
training data and its environment lock. Versions and dataset versions never change once
registered (see the services, and the database guard in the migrations)."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from portal.models import ServiceAccount, Team
from portal.validators import PlainName

SHA1_HEX = r"^[0-9a-f]{40}$"
SHA256_HEX = r"^[0-9a-f]{64}$"


class Repository(models.Model):
    """A git repository, named by its URL. A local bare mirror and a GitLab project are optional
    and set by an administrator."""

    url = models.CharField(max_length=500, unique=True)
    mirror_path = models.CharField(max_length=500, blank=True)
    gitlab_url = models.URLField(blank=True)
    gitlab_project_id = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["url"]
        verbose_name_plural = "repositories"

    def __str__(self) -> str:
        return self.url


class LifecycleStatus(models.TextChoices):
    IN_DEVELOPMENT = "in_development", "In development"
    IN_VALIDATION = "in_validation", "In validation"
    APPROVED = "approved", "Approved for use"
    IN_PRODUCTION = "in_production", "In production"
    RETIRED = "retired", "Retired"


class RegisteredModel(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    owner_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="models")
    description = models.TextField(blank=True)
    risk_tier = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(1), MaxValueValidator(3)]
    )
    # Kept by the registration service under the model's row lock, so numbering the next build
    # reads this row instead of every version of the model.
    highest_version_number = models.PositiveBigIntegerField(
        default=0,
        editable=False,
        help_text="The highest plain-number version (1, 2, 3 …) registered for this model.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The model inventory (issue 16): what Model Risk and a regulator ask first. Changed only by
    # `registry.model_risk.model_inventory_update`, audited with before and after.
    purpose = models.TextField(blank=True, help_text="What the model is for.")
    intended_use = models.TextField(blank=True)
    prohibited_uses = models.TextField(blank=True, help_text="Uses it must not be put to.")
    business_owner = models.CharField(max_length=150, blank=True)
    model_risk_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="risk_owned_models",
    )
    tier_rationale = models.TextField(
        blank=True, help_text="Why this tier: materiality, complexity, reliance."
    )
    ai_act_high_risk = models.BooleanField(default=False)
    regulatory_rationale = models.TextField(blank=True)
    upstream_models = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="downstream_models"
    )
    upstream_datasets = models.JSONField(default=list, blank=True)
    lifecycle_status = models.CharField(
        max_length=20, choices=LifecycleStatus.choices, default=LifecycleStatus.IN_DEVELOPMENT
    )
    next_validation_due = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(risk_tier__gte=1, risk_tier__lte=3), name="registered_model_risk_tier"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DatasetVersion(models.Model):
    name = models.CharField(max_length=200, validators=[PlainName()])
    version = models.CharField(max_length=100)
    uri = models.CharField(max_length=1000)
    sha256 = models.CharField(max_length=64)
    rows = models.BigIntegerField(null=True, blank=True)
    schema_sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="dataset_version_unique"),
            models.CheckConstraint(condition=Q(sha256__regex=SHA256_HEX), name="dataset_sha256"),
            models.CheckConstraint(
                condition=Q(schema_sha256="") | Q(schema_sha256__regex=SHA256_HEX),
                name="dataset_schema_sha256",
            ),
            models.CheckConstraint(
                condition=Q(rows__isnull=True) | Q(rows__gte=0), name="dataset_rows"
            ),
        ]
        # The search box finds datasets by the start of their name.
        indexes = [
            models.Index(
                fields=["name"], name="dataset_name_prefix", opclasses=["varchar_pattern_ops"]
            )
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


class ModelVersion(models.Model):
    """One build of a model. Immutable once registered."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=100)
    repository = models.ForeignKey(Repository, on_delete=models.PROTECT, related_name="versions")
    commit_sha = models.CharField(max_length=40)
    ref = models.CharField(max_length=255, blank=True)
    build_id = models.CharField(max_length=200)
    build_url = models.URLField(max_length=500, blank=True)
    artifact_uri = models.CharField(max_length=1000)
    artifact_sha256 = models.CharField(max_length=64)
    framework = models.CharField(max_length=100, blank=True)
    params = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    datasets = models.ManyToManyField(DatasetVersion, related_name="model_versions", blank=True)
    env_lock_sha256 = models.CharField(max_length=64, blank=True)
    # The model card CI sends with the build (registry.services.MODEL_CARD_FIELDS); immutable,
    # like the rest of the version.
    model_card = models.JSONField(default=dict, blank=True)
    created_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_by_service = models.ForeignKey(
        ServiceAccount, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_by_name = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="model_version_unique"),
            models.CheckConstraint(condition=Q(commit_sha__regex=SHA1_HEX), name="mv_commit_sha"),
            models.CheckConstraint(
                condition=Q(artifact_sha256__regex=SHA256_HEX), name="mv_artifact_sha256"
            ),
            models.CheckConstraint(
                condition=Q(env_lock_sha256="") | Q(env_lock_sha256__regex=SHA256_HEX),
                name="mv_env_lock_sha256",
            ),
        ]
        indexes = [
            models.Index(fields=["model", "artifact_sha256"], name="mv_model_artifact"),
            # One digest is one build, whatever the model: registration looks it up. The search
            # box looks up prefixes (`LIKE 'a1b2c3d%'`), which a btree under a non-C collation
            # serves only with the pattern operator class; equality uses it too.
            models.Index(
                fields=["artifact_sha256"],
                name="mv_artifact_prefix",
                opclasses=["varchar_pattern_ops"],
            ),
            models.Index(
                fields=["commit_sha"], name="mv_commit_prefix", opclasses=["varchar_pattern_ops"]
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} {self.version}"

    @property
    def short_sha(self) -> str:
        return self.commit_sha[:10]

    @property
    def latest_artifact_check(self) -> "ArtifactCheck | None":
        return self.artifact_checks.first()


class ArtifactOutcome(models.TextChoices):
    VERIFIED = "verified", "The store holds the registered digest"
    MISMATCH = "mismatch", "The store holds another digest"
    UNVERIFIED = "unverified", "The store could not be read"


class ArtifactCheckPurpose(models.TextChoices):
    REGISTRATION = "registration", "At registration"
    DEPLOYMENT_START = "deployment_start", "At deployment start"


class ArtifactCheck(models.Model):
    """One look at a version's artifact in its store (registry/artifacts.py): what the store held
    and when. The version itself never changes, so its verification is the history of these
    rows; the gate reads the newest one that reached the store."""

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="artifact_checks"
    )
    purpose = models.CharField(max_length=20, choices=ArtifactCheckPurpose.choices)
    outcome = models.CharField(max_length=12, choices=ArtifactOutcome.choices)
    store = models.CharField(max_length=20, help_text="s3, artifactory, file, http …")
    observed_sha256 = models.CharField(max_length=64, blank=True)
    detail = models.CharField(max_length=500, blank=True, help_text="Why it is unverified.")
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["-checked_at", "-id"]
        indexes = [
            models.Index(fields=["model_version", "-checked_at"], name="artifact_check_newest")
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(observed_sha256="") | Q(observed_sha256__regex=SHA256_HEX),
                name="artifact_check_sha256",
            )
        ]

    def __str__(self) -> str:
        return f"{self.model_version} artifact {self.outcome} at {self.checked_at:%Y-%m-%d %H:%M}"


class PipelineStatus(models.Model):
    """What the CI system last said about a commit's pipeline. Refreshed by a periodic task and
    after each registration; the gate reads it for repositories linked to GitLab."""

    repository = models.ForeignKey(
        Repository, on_delete=models.CASCADE, related_name="pipeline_statuses"
    )
    commit_sha = models.CharField(max_length=40)
    status = models.CharField(max_length=32, help_text="success, failed, running, … or none")
    checked_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["repository", "commit_sha"], name="pipeline_status_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.commit_sha[:10]}: {self.status}"

    @property
    def green(self) -> bool:
        return self.status == "success"


class ValidationOutcome(models.TextChoices):
    APPROVED = "approved", "Approved"
    CONDITIONS = "conditions", "Approved with conditions"
    REJECTED = "rejected", "Rejected"


class Validation(models.Model):
    """An independent validation of a model, covering the versions it names. Model Risk opens it
    naming its validator (over the API, or in one step from the model page), records findings
    while it is open, and the validator concludes it with an electronic signature
    (`registry.model_risk`). Only a concluded validation counts at the gate; it is never edited
    once concluded, and a new validation supersedes it."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="validations")
    covers = models.ManyToManyField("ModelVersion", related_name="validations")
    validator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="validations"
    )
    scope = models.TextField()
    opened_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=16, choices=ValidationOutcome.choices, blank=True)
    meaning = models.CharField(max_length=300, blank=True)
    reauthenticated = models.BooleanField(default=False)
    concluded_at = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = [models.F("concluded_at").desc(nulls_first=True), "-id"]
        constraints = [
            # Open: nothing of the signature yet. Concluded: all of it.
            models.CheckConstraint(
                condition=Q(
                    concluded_at__isnull=True,
                    valid_until__isnull=True,
                    outcome="",
                    meaning="",
                    reauthenticated=False,
                )
                | Q(
                    concluded_at__isnull=False,
                    valid_until__isnull=False,
                    outcome__in=ValidationOutcome.values,
                    reauthenticated=True,
                ),
                name="validation_open_or_signed",
            ),
        ]

    def __str__(self) -> str:
        state = self.get_outcome_display() if self.concluded_at else "open"
        return f"validation of {self.model} ({state})"

    @property
    def is_open(self) -> bool:
        return self.concluded_at is None

    @property
    def status(self) -> str:
        return "open" if self.is_open else "concluded"

    @property
    def expired(self) -> bool:
        return self.valid_until is not None and self.valid_until <= timezone.now()


class ValidationStepUp(models.Model):
    """A validation's conclusion waiting while its validator signs in again at the identity
    provider (rule 6 for single sign-on, `organisation.step_up`): the outcome and report chosen
    on the conclude form, and the state, nonce and PKCE verifier of the request that sent them
    there, bound to this conclusion alone. Taken once (`taken_at`) by the provider's answer,
    then used once: by the signature (`concluded_at`) or by a refusal."""

    validation = models.ForeignKey(Validation, on_delete=models.CASCADE, related_name="+")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    outcome = models.CharField(max_length=16, choices=ValidationOutcome.choices)
    # The report chosen on the form, attached when the signature is given.
    report_name = models.CharField(max_length=255, blank=True)
    report = models.BinaryField(blank=True, default=b"")
    state = models.CharField(max_length=64, unique=True)
    nonce = models.CharField(max_length=64)
    code_verifier = models.CharField(max_length=128)
    issued_at = models.DateTimeField()
    taken_at = models.DateTimeField(null=True, blank=True)
    concluded_at = models.DateTimeField(null=True, blank=True)
    refusal = models.CharField(max_length=50, blank=True)

    def __str__(self) -> str:
        return f"Conclusion of {self.validation} waiting at the identity provider"


class FindingSeverity(models.TextChoices):
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


class FindingStatus(models.TextChoices):
    OPEN = "open", "Open"
    REMEDIATED = "remediated", "Remediated"
    ACCEPTED = "accepted", "Accepted"


class Finding(models.Model):
    validation = models.ForeignKey(Validation, on_delete=models.PROTECT, related_name="findings")
    title = models.CharField(max_length=200)
    severity = models.CharField(max_length=8, choices=FindingSeverity.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_findings"
    )
    remediation_due = models.DateField()
    status = models.CharField(
        max_length=12, choices=FindingStatus.choices, default=FindingStatus.OPEN
    )
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["remediation_due", "id"]
        indexes = [
            models.Index(fields=["status", "severity", "remediation_due"], name="finding_open"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.severity})"


class DocumentKind(models.TextChoices):
    VALIDATION_REPORT = "validation_report", "Validation report"
    MODEL_CARD = "model_card", "Model card"


class Document(models.Model):
    """A file kept as evidence (a validation report, a model card): stored once under its
    sha256, never replaced; the registry checks the digest again whenever it hands it out."""

    kind = models.CharField(max_length=20, choices=DocumentKind.choices)
    name = models.CharField(max_length=200)
    file = models.FileField(upload_to="documents/", max_length=300)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    content_type = models.CharField(max_length=100)
    validation = models.ForeignKey(
        Validation, on_delete=models.PROTECT, null=True, blank=True, related_name="documents"
    )
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.sha256[:12]})"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("A document never changes once attached; attach a new one.")
        super().save(*args, **kwargs)
