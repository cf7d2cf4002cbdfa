"""`GET /api/v1/search/?q=`: the search box's answer for tools (releases/selectors/search.py).

Tokens need `gate:read` or `audit:read`: the answer says where builds run and who put them there,
which is what a pipeline asks the gate about and what an auditor reads; a token that only
registers builds or reports deployments has no reason to read other teams' history."""

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.authentication import is_service_account
from portal.models import Scope
from releases.api.deployment_serializers import DeployerOutput, PersonOutput, SignerOutput
from releases.selectors import search as selectors
from releases.selectors.live import signers_of

READ_SCOPES = (Scope.GATE_READ, Scope.AUDIT_READ)


class ReadsReleases(permissions.BasePermission):
    """People signed in, and tokens with one of READ_SCOPES."""

    message = (
        "Searching needs a token with the 'gate:read' or 'audit:read' scope: use such a token, "
        "or ask an administrator to grant one in Admin → Service accounts."
    )

    def has_permission(self, request, view) -> bool:
        if not is_service_account(request.user):
            return True
        return any(request.user.has_scope(scope) for scope in READ_SCOPES)


class LiveHitOutput(serializers.Serializer):
    """Where the build or model is live now, since when, under which change, who put it there."""

    environment = serializers.CharField(source="environment.name")
    deployment = serializers.IntegerField(source="pk")
    version = serializers.CharField(source="model_version.version")
    since = serializers.DateTimeField(source="succeeded_at")
    kind = serializers.CharField()
    change_request = serializers.CharField(
        source="change_request.number", allow_null=True, default=None
    )
    requester = PersonOutput(source="change_request.requester", allow_null=True, default=None)
    deployer = DeployerOutput(source="*")
    signers = serializers.SerializerMethodField()

    @extend_schema_field(SignerOutput(many=True))
    def get_signers(self, deployment) -> list[dict]:
        return SignerOutput(signers_of(deployment), many=True).data


class DeploymentBriefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    environment = serializers.CharField(source="environment.name")
    version = serializers.CharField(source="model_version.version")
    kind = serializers.CharField()
    status = serializers.CharField()
    started_at = serializers.DateTimeField()
    succeeded_at = serializers.DateTimeField(allow_null=True)
    started_by = serializers.CharField(source="started_by_name")
    change_request = serializers.CharField(
        source="change_request.number", allow_null=True, default=None
    )


class ChangeRequestBriefOutput(serializers.Serializer):
    number = serializers.CharField()
    state = serializers.CharField()
    kind = serializers.CharField()
    environment = serializers.CharField(source="environment.name")
    version = serializers.CharField(source="model_version.version")
    title = serializers.CharField()
    requester = serializers.CharField(source="requester.username")
    created_at = serializers.DateTimeField()


class BuildHitOutput(serializers.Serializer):
    model = serializers.CharField(source="version.model.name")
    version = serializers.CharField(source="version.version")
    commit_sha = serializers.CharField(source="version.commit_sha")
    artifact_sha256 = serializers.CharField(source="version.artifact_sha256")
    build_id = serializers.CharField(source="version.build_id")
    live = LiveHitOutput(many=True)
    deployments = DeploymentBriefOutput(many=True, help_text="The latest, newest first.")
    change_requests = ChangeRequestBriefOutput(many=True, help_text="The latest, newest first.")


class ModelHitOutput(serializers.Serializer):
    name = serializers.CharField(source="model.name")
    owner_team = serializers.CharField(source="model.owner_team.slug")
    live = LiveHitOutput(many=True)
    deployments = DeploymentBriefOutput(many=True)
    change_requests = ChangeRequestBriefOutput(many=True)


class ChangeRequestHitOutput(serializers.Serializer):
    number = serializers.CharField(source="change_request.number")
    state = serializers.CharField(source="change_request.state")
    kind = serializers.CharField(source="change_request.kind")
    environment = serializers.CharField(source="change_request.environment.name")
    title = serializers.CharField(source="change_request.title")
    requester = serializers.CharField(source="change_request.requester.username")
    build = BuildHitOutput()


class DatasetHitOutput(serializers.Serializer):
    name = serializers.CharField(source="dataset.name")
    version = serializers.CharField(source="dataset.version")
    sha256 = serializers.CharField(source="dataset.sha256")
    builds = BuildHitOutput(many=True, help_text="The latest builds trained on it.")


class SignOffBriefOutput(serializers.Serializer):
    change_request = serializers.CharField(source="change_request.number")
    kind = serializers.CharField()
    decision = serializers.CharField()
    team = serializers.CharField(source="team.slug", allow_null=True, default=None)
    signed_at = serializers.DateTimeField()
    voided = serializers.SerializerMethodField()

    def get_voided(self, sign_off) -> bool:
        return sign_off.voided_at is not None


class PersonHitOutput(serializers.Serializer):
    username = serializers.CharField(source="person.username")
    name = serializers.CharField(source="person.get_full_name")
    change_requests = ChangeRequestBriefOutput(many=True, help_text="The latest they filed.")
    deployments = DeploymentBriefOutput(many=True, help_text="The latest they started.")
    sign_offs = SignOffBriefOutput(many=True, help_text="The latest they gave.")


class SearchOutput(serializers.Serializer):
    query = serializers.CharField(help_text="The query as searched (spaces collapsed).")
    notes = serializers.ListField(
        child=serializers.CharField(),
        help_text="Why some kinds were not searched, or more matched than shown.",
    )
    truncated = serializers.ListField(
        child=serializers.CharField(), help_text="The kinds that matched more than shown."
    )
    change_requests = ChangeRequestHitOutput(many=True)
    models = ModelHitOutput(many=True)
    commits = BuildHitOutput(many=True, help_text="Builds whose commit starts with the query.")
    artifacts = BuildHitOutput(many=True, help_text="Builds whose digest starts with the query.")
    datasets = DatasetHitOutput(many=True)
    people = PersonHitOutput(many=True)


class SearchView(APIView):
    permission_classes = [permissions.IsAuthenticated, ReadsReleases]

    @extend_schema(
        operation_id="search",
        parameters=[
            OpenApiParameter(
                "q",
                # Two characters that are not spaces, or a change request's number alone.
                {
                    "type": "string",
                    "pattern": r"^[^\u0000]*(?:[^\s\u0000][^\u0000]*[^\s\u0000]|[0-9])[^\u0000]*$",
                },
                required=True,
                description="A change request number (CR-42 or 42), a model name, a commit SHA "
                f"or a prefix of {selectors.MIN_PREFIX}+ hex characters, an artifact digest or "
                "a prefix, a dataset name or a person (username or name).",
            )
        ],
        responses={
            200: SearchOutput,
            400: OpenApiResponse(
                description="`{code, detail}`: `query_missing` or `query_too_short`."
            ),
        },
        description=(
            "Where a change, model, build, dataset or person's work is live now, since when, "
            "under which change request and who put it there, with its latest deployments and "
            "change requests; grouped by the kind of match. The number of database queries "
            "does not depend on the size of the history."
        ),
    )
    def get(self, request: Request) -> Response:
        result = selectors.search(query=request.query_params.get("q", ""))
        return Response(SearchOutput(result).data)
