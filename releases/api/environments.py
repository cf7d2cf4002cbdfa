"""The environments and the rules in force in each, for reports (issue 17): the policy version
every new decision is taken under, its approval teams, soak and peer review, the freezes that
still stand, and what is live there now. A token needs `read`."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.authentication import TokenScopes
from portal.models import Scope
from portal.pagination import ReadCursor, page_of, paging_parameters, query_filters
from portal.serializers import Untrimmed
from releases.models import Deployment, Environment, EnvironmentPolicy, FreezeWindow
from releases.selectors.policy import environment_read, environments_read, environments_with_live


class PolicyOutput(serializers.ModelSerializer):
    approval_teams = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    soak_source = serializers.SlugRelatedField(
        slug_field="name", read_only=True, allow_null=True, help_text="null: no soak."
    )
    created_by = serializers.CharField(source="created_by_name")

    class Meta:
        model = EnvironmentPolicy
        fields = [
            "version",
            "needs_change_request",
            "needs_peer_review",
            "approval_teams",
            "soak_source",
            "soak_days",
            "soak_requires_healthy",
            "emergency_allowed",
            "requires_validation",
            "exclude_commit_authors",
            "retrospective_hours",
            "retrospective_excludes_authoriser",
            "created_at",
            "created_by",
        ]


class FreezeOutput(serializers.ModelSerializer):
    in_effect = serializers.SerializerMethodField(help_text="false: it has not begun yet.")

    class Meta:
        model = FreezeWindow
        fields = ["id", "starts_at", "ends_at", "reason", "in_effect"]

    def get_in_effect(self, freeze: FreezeWindow) -> bool:
        return freeze.starts_at <= timezone.now()


class LiveNowOutput(serializers.ModelSerializer):
    deployment = serializers.IntegerField(source="pk")
    model = serializers.CharField(source="model.name")
    version = serializers.CharField(source="model_version.version")
    artifact_sha256 = serializers.CharField(source="model_version.artifact_sha256")
    since = serializers.DateTimeField(source="succeeded_at")
    deployed_by = serializers.CharField(source="started_by_name")
    change_request = serializers.CharField(
        source="change_request.number", allow_null=True, default=None
    )

    class Meta:
        model = Deployment
        fields = [
            "deployment",
            "model",
            "version",
            "artifact_sha256",
            "kind",
            "since",
            "deployed_by",
            "change_request",
        ]


class EnvironmentOutput(serializers.ModelSerializer):
    policy = PolicyOutput(
        source="policy_in_force",
        allow_null=True,
        help_text="The policy in force (its latest version); null: none recorded yet.",
    )
    freezes = FreezeOutput(
        source="freezes_standing",
        many=True,
        help_text="Freezes not cancelled that have not ended, in effect or to come.",
    )
    live = LiveNowOutput(source="live_now", many=True, help_text="What is live now, per model.")

    class Meta:
        model = Environment
        fields = ["id", "name", "rank", "description", "is_production", "policy", "freezes", "live"]


class EnvironmentQuery(Untrimmed):
    production = serializers.BooleanField(
        required=False, help_text="true: production environments only; false: the others."
    )


class InPromotionOrder(ReadCursor):
    """Promotion order, the one every page shows. There are a handful of environments, one
    page; only re-ranking one between two pages of a long list could move it across them."""

    ordering = ("rank", "name")
    position_pattern = "[0-9]{1,5}"


ENVIRONMENT_EXAMPLE = {
    "id": 3,
    "name": "prod",
    "rank": 3,
    "description": "Production",
    "is_production": True,
    "policy": {
        "version": 3,
        "needs_change_request": True,
        "needs_peer_review": True,
        "approval_teams": ["model-risk", "platform-operations", "release-management"],
        "soak_source": "test",
        "soak_days": 7,
        "soak_requires_healthy": False,
        "emergency_allowed": True,
        "requires_validation": True,
        "exclude_commit_authors": False,
        "retrospective_hours": 72,
        "retrospective_excludes_authoriser": True,
        "created_at": "2026-10-01T08:00:00+02:00",
        "created_by": "admin",
    },
    "freezes": [
        {
            "id": 4,
            "starts_at": "2026-12-20T00:00:00+01:00",
            "ends_at": "2027-01-04T00:00:00+01:00",
            "reason": "Year-end freeze",
            "in_effect": False,
        }
    ],
    "live": [
        {
            "deployment": 1207,
            "model": "fraud-score",
            "version": "2.1.0",
            "artifact_sha256": "9b74c9897bac770ffc029102a200c5de5f1e2c7e4b3a2d1c0f9e8d7c6b5a4f3e",
            "kind": "deploy",
            "since": "2026-11-26T09:21:40+01:00",
            "deployed_by": "cd-platform",
            "change_request": "CR-42",
        }
    ],
}


class EnvironmentsView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes]
    required_scopes = {"GET": Scope.READ}

    @extend_schema(
        operation_id="v1_environments_list",
        parameters=[EnvironmentQuery, *paging_parameters(InPromotionOrder)],
        responses={200: page_of("EnvironmentPage", EnvironmentOutput(many=True))},
        examples=[
            OpenApiExample(
                "The environments",
                value={"next": None, "previous": None, "results": [ENVIRONMENT_EXAMPLE]},
                response_only=True,
            )
        ],
        description=(
            "Every environment in promotion order with the policy in force, its standing "
            "freezes and what is live there now; cursor paging. A token needs `read`."
        ),
    )
    def get(self, request: Request) -> Response:
        filters = query_filters(EnvironmentQuery, request)
        paginator = InPromotionOrder()
        page = paginator.paginate_queryset(environments_read(**filters), request, view=self)
        return paginator.get_paginated_response(
            EnvironmentOutput(environments_with_live(page), many=True).data
        )


class EnvironmentView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes]
    required_scopes = {"GET": Scope.READ}

    @extend_schema(
        operation_id="v1_environment_retrieve",
        responses={
            200: EnvironmentOutput,
            404: OpenApiResponse(description="`unknown_environment`."),
        },
        examples=[OpenApiExample("prod", value=ENVIRONMENT_EXAMPLE, response_only=True)],
        description=(
            "One environment by name with the policy in force, its standing freezes and what "
            "is live there now (`/live/?at=` answers for a past moment). A token needs `read`."
        ),
    )
    def get(self, request: Request, environment: str) -> Response:
        [found] = environments_with_live([environment_read(name=environment)])
        return Response(EnvironmentOutput(found).data)
