"""Input and output shapes of the gate, deployment, rollback and live endpoints. Inputs name
things as the REST contract does (environment and model by name, change request by number)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.serializers import NoUnknownFields
from portal.validators import HTTP_URL, HTTP_URL_MESSAGE, WholeMatch
from releases.models import Deployment, DeploymentStatus, SignOff
from releases.selectors.live import signers_of
from releases.services.gate import GateCode

SHA256 = r"^[0-9a-f]{64}$"
CHANGE_REQUEST_NUMBER = r"^CR-[0-9]{1,18}$"


class BuildQuestion(NoUnknownFields):
    environment = serializers.CharField(max_length=50, help_text="dev, test, prod, …")
    model = serializers.CharField(max_length=100, help_text="The registered model's name.")
    version = serializers.CharField(
        max_length=100, required=False, default="", help_text="The registered version."
    )
    artifact_sha256 = serializers.RegexField(
        SHA256,
        required=False,
        default="",
        help_text="The artifact digest; alone, it finds the version.",
    )
    change_request = serializers.CharField(
        max_length=20,
        required=False,
        default="",
        help_text="CR-42. Without it the gate finds the approved change for this build.",
    )

    def validate(self, attrs):
        # The schema says it as `oneOf` (releases/api/schema.py).
        if not attrs["version"] and not attrs["artifact_sha256"]:
            raise serializers.ValidationError(
                {"version": "Name the version or give the artifact_sha256."}
            )
        return attrs


class GateInput(BuildQuestion):
    pass


class ReasonOutput(serializers.Serializer):
    code = serializers.ChoiceField(GateCode.choices, help_text="A stable code; see GateCode.")
    message = serializers.CharField()


class SoakOutput(serializers.Serializer):
    source = serializers.CharField()
    days = serializers.IntegerField()
    deployment = serializers.IntegerField(
        allow_null=True, help_text="The deployment that began the build's latest span there."
    )
    live_from = serializers.DateTimeField(allow_null=True)
    live_until = serializers.DateTimeField(allow_null=True, help_text="null: still live.")
    rolled_back_at = serializers.DateTimeField(
        allow_null=True, help_text="A rollback away from the digest there since: no soak."
    )
    failed_health_checks = serializers.IntegerField()
    earliest_allowed_at = serializers.DateTimeField(
        allow_null=True, help_text="null: no span can satisfy the rule as things stand."
    )
    holds = serializers.BooleanField()


class GateOutput(serializers.Serializer):
    allowed = serializers.BooleanField()
    change_request = serializers.CharField(allow_null=True, help_text="CR-42 or null.")
    reasons = ReasonOutput(many=True)
    warnings = ReasonOutput(many=True)
    policy_version = serializers.IntegerField(allow_null=True)
    soak = SoakOutput(allow_null=True)
    decided_at = serializers.DateTimeField()


def http_url_field(**options) -> serializers.CharField:
    return serializers.CharField(
        max_length=500,
        required=False,
        default="",
        trim_whitespace=False,
        validators=[WholeMatch(HTTP_URL, HTTP_URL_MESSAGE)],
        **options,
    )


class DeploymentInput(BuildQuestion):
    pipeline_url = http_url_field(
        help_text="The CD run; a retry with the same URL returns the same deployment."
    )
    health_url = http_url_field(help_text="Where the deployment answers its health checks.")


class ResultInput(NoUnknownFields):
    status = serializers.ChoiceField([DeploymentStatus.SUCCEEDED, DeploymentStatus.FAILED])
    detail = serializers.CharField(required=False, allow_blank=True, default="")


class RollbackInput(NoUnknownFields):
    reason = serializers.CharField(help_text="Why; kept on the rollback and in the audit trail.")
    from_version = serializers.CharField(
        max_length=100,
        required=False,
        default="",
        help_text="The version being rolled back; 409 not_live when it is no longer live (a "
        "retried rollback then goes back no further).",
    )


class SignerOutput(serializers.ModelSerializer):
    username = serializers.CharField(source="signer.username")
    name = serializers.CharField(source="signer.get_full_name")
    team = serializers.CharField(source="team.slug", allow_null=True)

    class Meta:
        model = SignOff
        fields = ["id", "kind", "username", "name", "team", "meaning", "signed_at"]


class DeploymentOutput(serializers.ModelSerializer):
    environment = serializers.CharField(source="environment.name")
    model = serializers.CharField(source="model.name")
    version = serializers.CharField(source="model_version.version")
    commit_sha = serializers.CharField(source="model_version.commit_sha")
    artifact_sha256 = serializers.CharField(source="model_version.artifact_sha256")
    change_request = serializers.CharField(
        source="change_request.number", allow_null=True, default=None
    )
    started_by = serializers.CharField(source="started_by_name")
    # As reported, of the input's pattern (HTTP_URL): not `format: uri`, whose every RFC 3986
    # rule the server does not check.
    pipeline_url = serializers.CharField()
    health_url = serializers.CharField()

    class Meta:
        model = Deployment
        fields = [
            "id",
            "environment",
            "model",
            "version",
            "commit_sha",
            "artifact_sha256",
            "kind",
            "status",
            "rollback_of",
            "change_request",
            "started_by",
            "started_at",
            "finished_at",
            "succeeded_at",
            "pipeline_url",
            "health_url",
            "detail",
            "reason",
        ]


class PersonOutput(serializers.Serializer):
    username = serializers.CharField()
    name = serializers.CharField(source="get_full_name")


class DeployerOutput(serializers.Serializer):
    """Who started the deployment: a person, or a pipeline (a service account) with the link to
    its run."""

    kind = serializers.ChoiceField(choices=["person", "pipeline"])
    name = serializers.CharField(help_text="The person's username or the service account's name.")
    pipeline_url = serializers.CharField(allow_blank=True)

    def to_representation(self, deployment: Deployment) -> dict:
        return {
            "kind": "pipeline" if deployment.started_by_service_id else "person",
            "name": deployment.started_by_name,
            "pipeline_url": deployment.pipeline_url,
        }


class LiveModelOutput(serializers.Serializer):
    deployment = serializers.IntegerField(source="pk")
    model = serializers.CharField(source="model.name")
    version = serializers.CharField(source="model_version.version")
    commit_sha = serializers.CharField(source="model_version.commit_sha")
    artifact_sha256 = serializers.CharField(source="model_version.artifact_sha256")
    since = serializers.DateTimeField(source="succeeded_at")
    kind = serializers.CharField()
    status = serializers.CharField()
    deployed_by = serializers.CharField(source="started_by_name")
    deployer = DeployerOutput(source="*")
    change_request = serializers.CharField(
        source="change_request.number", allow_null=True, default=None
    )
    requester = PersonOutput(
        source="change_request.requester",
        allow_null=True,
        default=None,
        help_text="Who asked for the change; null when the environment needs none.",
    )
    signers = serializers.SerializerMethodField()

    @extend_schema_field(SignerOutput(many=True))
    def get_signers(self, deployment: Deployment) -> list[dict]:
        return SignerOutput(signers_of(deployment), many=True).data


class LiveOutput(serializers.Serializer):
    environment = serializers.CharField()
    at = serializers.DateTimeField(allow_null=True, help_text="null: now.")
    models = LiveModelOutput(many=True)


class RunInput(NoUnknownFields):
    environment = serializers.CharField(max_length=50, help_text="Where the job scores.")
    model = serializers.CharField(max_length=100, help_text="The registered model's name.")
    artifact_sha256 = serializers.RegexField(SHA256, help_text="The digest the job loaded.")
    job_id = serializers.CharField(
        max_length=200, help_text="The scheduler's id: YARN application, Airflow run, cron tag."
    )
    host = serializers.CharField(max_length=255, help_text="Where the job runs.")


class RunOutput(serializers.Serializer):
    id = serializers.IntegerField()
    allowed = serializers.BooleanField(help_text="false: the job must not score.")
    code = serializers.ChoiceField(
        ["digest_not_live", "nothing_live"], allow_null=True, help_text="Why not; null if allowed."
    )
    detail = serializers.CharField()
    environment = serializers.CharField()
    model = serializers.CharField()
    artifact_sha256 = serializers.CharField()
    job_id = serializers.CharField()
    host = serializers.CharField()
    live_version = serializers.CharField(allow_null=True)
    live_sha256 = serializers.CharField(allow_null=True)
    started_at = serializers.DateTimeField()
