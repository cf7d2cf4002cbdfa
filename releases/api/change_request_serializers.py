"""Input and output shapes of the change request API. The input names things as the REST
contract does (model and environment by name, team by slug) and turns them into rows; the
services check the rules."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.exceptions import NotFound
from portal.models import Team
from portal.serializers import MomentField, NoUnknownFields
from portal.validators import SingleLine
from registry.models import ModelVersion
from releases import hooks
from releases.models import ChangeRequest, Environment, RiskLevel, SignOff
from releases.states import Kind


class ChangeRequestInput(NoUnknownFields):
    model = serializers.CharField(max_length=100, help_text="The registered model's name.")
    version = serializers.CharField(max_length=100, help_text="The registered version.")
    environment = serializers.CharField(max_length=50, help_text="dev, test, prod, …")
    # Standard changes and their templates are filed on their pages (issue 18).
    kind = serializers.ChoiceField(
        [(kind.value, kind.label) for kind in (Kind.NORMAL, Kind.EMERGENCY)],
        required=False,
        default=Kind.NORMAL,
    )
    title = serializers.CharField(max_length=200, validators=[SingleLine()], trim_whitespace=False)
    justification = serializers.CharField()
    risk = serializers.CharField(required=False, allow_blank=True, default="")
    test_evidence = serializers.CharField(required=False, allow_blank=True, default="")
    rollback_plan = serializers.CharField()
    window_start = MomentField(
        required=False, allow_null=True, default=None, help_text="Required for a normal change."
    )
    window_end = MomentField(
        required=False, allow_null=True, default=None, help_text="Required for a normal change."
    )
    incident_ref = serializers.CharField(
        max_length=100,
        validators=[SingleLine()],
        trim_whitespace=False,
        required=False,
        allow_blank=True,
        default="",
        help_text="Required for an emergency change.",
    )
    team = serializers.SlugField(
        max_length=100,
        required=False,
        allow_blank=True,
        default="",
        help_text="Slug of the requester's team that reviews it; by default the model owner's "
        "team if the requester is in it, else their first team.",
    )
    submit = serializers.BooleanField(
        required=False, default=True, help_text="False keeps it as a draft."
    )
    retires_model = serializers.BooleanField(
        required=False,
        default=False,
        help_text="A normal change that, once approved, retires the model everywhere.",
    )

    def validate(self, data: dict) -> dict:
        """The shape first (400, as the schema's `oneOf` says: a normal change has its window, an
        emergency its incident), then the names: one that names nothing is 404."""
        errors: dict[str, list[str]] = {}
        if data["kind"] == Kind.NORMAL:
            for name in ("window_start", "window_end"):
                if data[name] is None:
                    errors[name] = ["Required for a normal change."]
        elif not data["incident_ref"].strip():
            errors["incident_ref"] = ["Required for an emergency change."]
        if errors:
            raise serializers.ValidationError(errors)
        model_version = (
            ModelVersion.objects.select_related("model")
            .filter(model__name=data["model"], version=data["version"])
            .first()
        )
        if model_version is None:
            raise NotFound(
                f"{data['model']} has no registered version '{data['version']}'. CI registers "
                "each build (gatehouse_ci.py build, docs/ci.md); name one the model lists.",
                code="unknown_build",
            )
        environment = Environment.objects.filter(name=data["environment"]).first()
        if environment is None:
            raise NotFound(
                f"No environment is named '{data['environment']}'. Names are exact (dev, test, "
                "prod …): GET /api/v1/environments/ lists them.",
                code="unknown_environment",
            )
        team = None
        if data["team"]:
            team = Team.objects.filter(slug=data["team"]).first()
            if team is None:
                raise NotFound(
                    f"No team has the slug '{data['team']}'. Leave it out to file for the "
                    "model's owner team.",
                    code="unknown_team",
                )
        return {
            "model_version": model_version,
            "environment": environment,
            "team": team,
            "kind": data["kind"],
            "title": data["title"],
            "justification": data["justification"],
            "risk_impact": data["risk"],
            "test_evidence": data["test_evidence"],
            "rollback_plan": data["rollback_plan"],
            "window_start": data["window_start"],
            "window_end": data["window_end"],
            "incident_ref": data["incident_ref"],
            "retires_model": data["retires_model"],
            "submit": data["submit"],
        }


class SignOffOutput(serializers.ModelSerializer):
    # Plain text rather than a second enum called "kind" in the schema.
    kind = serializers.CharField(
        read_only=True,
        help_text="peer_review, approval, emergency_authorisation or retrospective.",
    )
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    signer = serializers.SlugRelatedField(slug_field="username", read_only=True)
    policy_version = serializers.IntegerField(source="policy.version", read_only=True)
    withdrawn_by = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="The signer, when they withdrew it (void without it: voided by an edit).",
    )
    on_behalf_of = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="The absent approver for whom the signer approved, as their delegate; null "
        "for a signature in one's own name.",
    )

    class Meta:
        model = SignOff
        fields = [
            "id",
            "kind",
            "team",
            "signer",
            "decision",
            "comment",
            "meaning",
            "content_digest",
            "policy_version",
            "reauthenticated",
            "auth_time",
            "acr",
            "signed_at",
            "voided_at",
            "voided_reason",
            "withdrawn_by",
            "on_behalf_of",
        ]


class ExternalLinkOutput(serializers.Serializer):
    system = serializers.CharField(read_only=True, help_text="ServiceNow, Jira, …")
    reference = serializers.CharField(
        read_only=True, help_text="The record's number or key there: CHG0030001, OPS-42."
    )
    url = serializers.URLField(read_only=True)


class RiskFactorOutput(serializers.Serializer):
    name = serializers.CharField(read_only=True)
    value = serializers.CharField(read_only=True, help_text="What was measured, in words.")
    points = serializers.IntegerField(read_only=True)


class RiskScoreOutput(serializers.Serializer):
    """Issue 18: the score computed at submission, never changed afterwards."""

    score = serializers.IntegerField(read_only=True)
    # Plain text: the schema has another enum called "level" already.
    level = serializers.CharField(read_only=True, help_text=", ".join(RiskLevel.values))
    factors = RiskFactorOutput(many=True, read_only=True)
    policy_version = serializers.IntegerField(
        read_only=True, help_text="The policy version the score cites."
    )


class ChangeRequestOutput(serializers.ModelSerializer):
    """Reads the external links from the context (`external_links`, the hook's answer for a
    whole page) when the view put them there, else asks the hook for this one request."""

    number = serializers.CharField(read_only=True)
    model = serializers.CharField(source="model_version.model.name", read_only=True)
    version = serializers.CharField(source="model_version.version", read_only=True)
    model_version_id = serializers.IntegerField(read_only=True)
    commit_sha = serializers.CharField(source="model_version.commit_sha", read_only=True)
    artifact_sha256 = serializers.CharField(source="model_version.artifact_sha256", read_only=True)
    environment = serializers.SlugRelatedField(slug_field="name", read_only=True)
    requester = serializers.SlugRelatedField(slug_field="username", read_only=True)
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    risk = serializers.CharField(source="risk_impact", read_only=True)
    policy_version = serializers.IntegerField(
        source="policy.version", read_only=True, allow_null=True, default=None
    )
    sign_offs = SignOffOutput(many=True, read_only=True)
    external_links = serializers.SerializerMethodField(
        help_text="Where else the change is recorded: its change ticket in ServiceNow or Jira."
    )
    risk_score = serializers.SerializerMethodField(
        help_text="The risk score computed when it was submitted; null before."
    )
    standard_template = serializers.SerializerMethodField(
        help_text="The standard change template it is made under, or that it approves (ST-7)."
    )

    class Meta:
        model = ChangeRequest
        fields = [
            "id",
            "number",
            "kind",
            "state",
            "model",
            "version",
            "model_version_id",
            "commit_sha",
            "artifact_sha256",
            "environment",
            "requester",
            "team",
            "title",
            "justification",
            "risk",
            "test_evidence",
            "rollback_plan",
            "window_start",
            "window_end",
            "incident_ref",
            "retires_model",
            "content_digest",
            "policy_version",
            "created_at",
            "updated_at",
            "submitted_at",
            "retrospective_due_at",
            "sign_offs",
            "external_links",
            "risk_score",
            "standard_template",
        ]

    @extend_schema_field(RiskScoreOutput(allow_null=True))
    def get_risk_score(self, change_request: ChangeRequest) -> dict | None:
        if change_request.risk_score is None:
            return None
        return RiskScoreOutput(
            {
                "score": change_request.risk_score,
                "level": change_request.risk_level,
                "factors": change_request.risk_factors,
                "policy_version": change_request.risk_policy.version,
            }
        ).data

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_standard_template(self, change_request: ChangeRequest) -> str | None:
        template_id = change_request.standard_template_id
        return f"ST-{template_id}" if template_id else None

    @extend_schema_field(ExternalLinkOutput(many=True))
    def get_external_links(self, change_request: ChangeRequest) -> list[dict]:
        links = self.context.get("external_links")
        if links is None:
            links = hooks.external_links([change_request])
        return ExternalLinkOutput(links.get(change_request.pk, []), many=True).data
