"""Input and output shapes of the registry API. Inputs check types only; the services check the
rules (formats, known datasets, teams) so every path gets the same answers."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.serializers import NoUnknownFields, Untrimmed
from portal.validators import HTTP_URL, HTTP_URL_MESSAGE, PlainName, WholeMatch
from registry.models import (
    ArtifactCheck,
    DatasetVersion,
    Finding,
    FindingSeverity,
    LifecycleStatus,
    ModelVersion,
    RegisteredModel,
    Validation,
)
from registry.reproducibility import reproducibility
from registry.services import JSON_SAFE_INTEGER

# The shapes the registry's services check (registry/services.py), stated in the schema.
SHA1 = r"^[0-9a-f]{40}$"
SHA256 = r"^[0-9a-f]{64}$"
VERSION = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$"
# Printable ASCII, spelt out rather than `\s`, which regular expression engines read apart.
REPOSITORY_URL = (
    r'^(?:(?:https?|ssh|git)://(?:[!-.0-?A-~]+@)?[!"$-.0-9;->A-~]+(?::[0-9]+)?/[!-~]*[!-.0-~]'
    r"|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[!-.0-~][!-~]*)$"
)


def shaped(pattern: str, message: str, **options) -> serializers.CharField:
    """A text field of one exact shape, read as sent (no trimming), so that what the schema's
    pattern refuses is refused. Where blank is allowed, "" is taken without the pattern."""
    return serializers.CharField(
        trim_whitespace=False, validators=[WholeMatch(pattern, message)], **options
    )


def sha256_field(**options) -> serializers.CharField:
    return shaped(
        SHA256,
        "Must be a sha256 digest: 64 lowercase hexadecimal characters.",
        max_length=64,
        **options,
    )


TEXT = {"type": "string", "pattern": r"^[^\u0000]*$"}
# What registry.services.build_record_problem accepts of each value, stated as it checks it.
BUILD_SCALARS = [
    TEXT,
    {"type": "number", "minimum": -JSON_SAFE_INTEGER, "maximum": JSON_SAFE_INTEGER},
    {"type": "boolean", "nullable": True},
]
BUILD_VALUE = {
    "anyOf": [
        *BUILD_SCALARS,
        {"type": "array", "items": {"anyOf": BUILD_SCALARS}},
        {"type": "object", "additionalProperties": {"anyOf": BUILD_SCALARS}},
    ]
}


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            **dict.fromkeys(
                (
                    "purpose",
                    "training_data",
                    "training_period",
                    "limitations",
                    "fairness",
                    "stability",
                    "monitoring",
                    "reference",
                ),
                TEXT,
            ),
            "evaluation": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["metric", "value", "dataset"],
                    "additionalProperties": BUILD_VALUE,
                },
            },
        },
    }
)
class ModelCardField(serializers.DictField):
    """A model card as registry.services checks it, stated in the schema."""


@extend_schema_field(
    {
        "type": "object",
        "description": "Names to text, numbers within ±(2**53 - 1), true/false or null, or one "
        "list or object of those. No NUL character in a name or a value: PostgreSQL cannot "
        "store one (400 on the field).",
        "additionalProperties": BUILD_VALUE,
    }
)
class BuildRecordField(serializers.DictField):
    """A build's params or metrics: registry.services checks the values."""


class DatasetVersionInput(NoUnknownFields):
    name = serializers.CharField(max_length=200, validators=[PlainName()])
    version = shaped(VERSION, "Letters, digits and . _ + -, starting with a letter or digit.")
    uri = serializers.CharField(max_length=1000)
    sha256 = sha256_field()
    # The audit trail's canonical JSON (RFC 8785) holds integers up to 2**53 exactly.
    rows = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=2**53 - 1
    )
    schema_sha256 = sha256_field(required=False, allow_blank=True, default="")


class DatasetVersionOutput(serializers.ModelSerializer):
    class Meta:
        model = DatasetVersion
        fields = ["id", "name", "version", "uri", "sha256", "rows", "schema_sha256", "created_at"]


class ModelInput(NoUnknownFields):
    name = serializers.SlugField(max_length=100)
    owner_team = serializers.SlugField(
        max_length=100, help_text="The owning team's slug; 404 `unknown_team` if none has it."
    )
    description = serializers.CharField(required=False, allow_blank=True, default="")
    risk_tier = serializers.IntegerField(required=False, default=2, min_value=1, max_value=3)


class ModelOutput(serializers.ModelSerializer):
    owner_team = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = RegisteredModel
        fields = ["id", "name", "owner_team", "description", "risk_tier", "created_at"]


class DatasetRef(NoUnknownFields):
    name = serializers.CharField(max_length=200)
    version = serializers.CharField(max_length=100)


class ModelVersionInput(NoUnknownFields):
    version = shaped(
        VERSION,
        "Letters, digits and . _ + -, starting with a letter or digit.",
        max_length=100,
        required=False,
        allow_blank=True,
        default="",
        help_text="Omit to number the build: the same commit and build id find the same version.",
    )
    repository = shaped(
        REPOSITORY_URL,
        "Must be a git repository URL: https://, http://, ssh:// or git@host:path.",
        max_length=500,
        help_text="The repository's URL.",
    )
    commit_sha = shaped(
        SHA1, "Must be a full git commit SHA: 40 lowercase hexadecimal characters.", max_length=40
    )
    ref = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    build_id = serializers.CharField(max_length=200)
    build_url = shaped(
        HTTP_URL,
        HTTP_URL_MESSAGE,
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
    )
    artifact_uri = serializers.CharField(max_length=1000)
    artifact_sha256 = sha256_field()
    framework = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    params = BuildRecordField(required=False, default=dict)
    metrics = BuildRecordField(required=False, default=dict)
    datasets = DatasetRef(many=True, required=False, default=list)
    model_card = ModelCardField(
        required=False,
        default=dict,
        help_text="purpose, training_data, training_period, evaluation ([{metric, value, "
        "dataset}]), limitations, fairness, stability, monitoring, or a reference to a card.",
    )
    env_lock_sha256 = sha256_field(required=False, allow_blank=True, default="")


class DatasetOfVersion(serializers.ModelSerializer):
    class Meta:
        model = DatasetVersion
        fields = ["id", "name", "version", "uri", "sha256"]


class ArtifactCheckOutput(serializers.ModelSerializer):
    class Meta:
        model = ArtifactCheck
        fields = ["outcome", "purpose", "store", "observed_sha256", "detail", "checked_at"]


class ModelVersionOutput(serializers.ModelSerializer):
    """A version as CI and tools see it, with whether it can be rebuilt and what is missing."""

    model = serializers.SlugRelatedField(slug_field="name", read_only=True)
    repository = serializers.SlugRelatedField(slug_field="url", read_only=True)
    datasets = DatasetOfVersion(many=True, read_only=True)
    created_by = serializers.CharField(source="created_by_name", read_only=True)
    # As registered, of the input's pattern (HTTP_URL): not `format: uri`, whose every RFC 3986
    # rule the server does not check.
    build_url = serializers.CharField(read_only=True)
    reproducible = serializers.SerializerMethodField()
    missing = serializers.SerializerMethodField()
    artifact_check = ArtifactCheckOutput(
        source="latest_artifact_check",
        read_only=True,
        allow_null=True,
        help_text="The newest look at the artifact in its store: verified, mismatch or "
        "unverified (with why). null: registered before verification existed.",
    )

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "model",
            "version",
            "repository",
            "commit_sha",
            "ref",
            "build_id",
            "build_url",
            "artifact_uri",
            "artifact_sha256",
            "framework",
            "params",
            "metrics",
            "datasets",
            "env_lock_sha256",
            "model_card",
            "created_by",
            "created_at",
            "reproducible",
            "missing",
            "artifact_check",
        ]

    def get_reproducible(self, version: ModelVersion) -> bool:
        return reproducibility(version).reproducible

    def get_missing(self, version: ModelVersion) -> list[str]:
        """Keys: code, build, artifact, data, dataset:<name>@<version>, environment_lock."""
        return reproducibility(version).missing


class InventoryOutput(serializers.ModelSerializer):
    owner_team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    model_risk_owner = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    upstream_models = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)

    class Meta:
        model = RegisteredModel
        fields = [
            "id",
            "name",
            "owner_team",
            "risk_tier",
            "tier_rationale",
            "lifecycle_status",
            "purpose",
            "intended_use",
            "prohibited_uses",
            "business_owner",
            "model_risk_owner",
            "ai_act_high_risk",
            "regulatory_rationale",
            "upstream_models",
            "upstream_datasets",
            "next_validation_due",
        ]


class InventoryInput(NoUnknownFields):
    """Shape only: the service checks who may change what, and the values against each other."""

    risk_tier = serializers.IntegerField(min_value=1, max_value=3, required=False)
    tier_rationale = serializers.CharField(allow_blank=True, required=False)
    lifecycle_status = serializers.ChoiceField(choices=LifecycleStatus.choices, required=False)
    purpose = serializers.CharField(allow_blank=True, required=False)
    intended_use = serializers.CharField(allow_blank=True, required=False)
    prohibited_uses = serializers.CharField(allow_blank=True, required=False)
    business_owner = serializers.CharField(allow_blank=True, max_length=150, required=False)
    model_risk_owner = serializers.CharField(allow_null=True, max_length=150, required=False)
    ai_act_high_risk = serializers.BooleanField(required=False)
    regulatory_rationale = serializers.CharField(allow_blank=True, required=False)
    upstream_models = serializers.ListField(child=serializers.CharField(), required=False)
    upstream_datasets = serializers.ListField(child=serializers.CharField(), required=False)
    next_validation_due = serializers.DateField(allow_null=True, required=False)


class FindingOutput(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Finding
        fields = ["id", "title", "severity", "owner", "remediation_due", "status", "closed_at"]


class ValidationOutput(serializers.ModelSerializer):
    validator = serializers.SlugRelatedField(slug_field="username", read_only=True)
    versions = serializers.SlugRelatedField(
        source="covers", slug_field="version", many=True, read_only=True
    )
    status = serializers.ChoiceField(
        choices=["open", "concluded"],
        read_only=True,
        help_text="`open` until its validator signs it (no outcome until then), `concluded`.",
    )
    findings = FindingOutput(many=True, read_only=True)

    class Meta:
        model = Validation
        fields = [
            "id",
            "status",
            "versions",
            "validator",
            "scope",
            "opened_at",
            "outcome",
            "meaning",
            "concluded_at",
            "valid_until",
            "findings",
        ]


class ValidationOpenInput(NoUnknownFields):
    versions = serializers.ListField(
        child=serializers.CharField(max_length=100),
        min_length=1,
        max_length=50,
        help_text="The versions of the model it covers.",
    )
    scope = serializers.CharField(max_length=5000, help_text="What the validation covers.")
    validator = serializers.CharField(
        max_length=150,
        help_text="The username of the member of Model Risk who will conclude it, independent "
        "of the model (not in its owner team, not an author of the commits it covers).",
    )


class FindingInput(NoUnknownFields):
    title = serializers.CharField(max_length=200)
    severity = serializers.ChoiceField(choices=FindingSeverity.choices)
    owner = serializers.CharField(max_length=150, help_text="The username of its owner.")
    remediation_due = serializers.DateField()


class InventoryFilters(Untrimmed):
    """The inventory list's query string, as the inventory page filters: a value it does not
    know is a 400, not an empty page."""

    risk_tier = serializers.ChoiceField(choices=[1, 2, 3], required=False)
    lifecycle_status = serializers.ChoiceField(choices=LifecycleStatus.choices, required=False)
    owner_team = serializers.SlugField(max_length=100, required=False)
    validation_due_by = serializers.DateField(required=False)


class InventoryPage(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = InventoryOutput(many=True)


class FindingCloseInput(NoUnknownFields):
    status = serializers.ChoiceField(choices=["remediated", "accepted"])
    note = serializers.CharField(max_length=2000)
