"""The gate, deployments, rollback and live endpoints (DESIGN.md, REST contract v1).

The gate answers 200 whatever it decides; a deployment start that the gate refuses is 403 with
every reason. All of them call the same services as the pages."""

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.authentication import TokenScopes
from portal.idempotency import idempotent
from portal.models import Scope
from portal.moments import moment_from_query
from portal.pagination import PAGING_PARAMETERS, ReadCursor, page_of, query_filters
from portal.serializers import MomentField, Untrimmed
from releases.api import deployment_serializers as s
from releases.api.deployment_serializers import CHANGE_REQUEST_NUMBER
from releases.models import Deployment, DeploymentKind, DeploymentStatus, Environment
from releases.selectors.deployments import DeploymentFilters, deployment_get, deployments_read
from releases.selectors.live import live_in_environment
from releases.services import deployments, gate

ERRORS = {
    400: OpenApiResponse(description="Validation errors: field → messages."),
    403: OpenApiResponse(description="The token lacks the scope, or a rule denial."),
    404: OpenApiResponse(description="No such environment, model or deployment."),
    409: OpenApiResponse(description="`{code, detail}`, e.g. deployment_finished."),
}
GATE_DENIED = OpenApiResponse(
    s.GateOutput,
    description="The gate refused: `{code: gate_denied, detail, reasons: [{code, message}]}`.",
)


def _named(model, name: str):
    """The row named so in the URL; a name no row could have (a NUL byte) is simply not found."""
    if "\x00" in name:
        raise Http404
    return get_object_or_404(model, name=name)


class GateView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes]
    required_scopes = {"POST": Scope.GATE_READ}

    @extend_schema(
        request=s.GateInput,
        responses={200: s.GateOutput, 400: ERRORS[400], 403: ERRORS[403]},
        description=(
            "May this build go into this environment now? Always 200: `allowed`, the change "
            "request it would go under, and every failing rule with a stable `code` and a "
            "`message`. The decision is recorded with the policy version it applied."
        ),
    )
    def post(self, request: Request) -> Response:
        question = s.GateInput(data=request.data)
        question.is_valid(raise_exception=True)
        answer = gate.gate_decide(actor=request.user, request=request, **question.validated_data)
        # `as_dict` is the answer's one serialised form; GateOutput documents its shape.
        return Response(answer.as_dict())


class DeploymentQuery(Untrimmed):
    """The history's query string: a value of the wrong shape is 400 `invalid_filter`."""

    environment = serializers.SlugField(max_length=50, required=False)
    model = serializers.SlugField(max_length=100, required=False, help_text="The model's name.")
    status = serializers.ChoiceField(DeploymentStatus.choices, required=False)
    kind = serializers.ChoiceField(DeploymentKind.choices, required=False)
    change_request = serializers.RegexField(
        CHANGE_REQUEST_NUMBER,
        max_length=21,
        required=False,
        help_text="The deployments made under this change request (CR-42).",
    )
    started_since = MomentField(required=False, help_text="ISO-8601 with its offset.")


DEPLOYMENT_EXAMPLE = {
    "id": 1207,
    "environment": "prod",
    "model": "fraud-score",
    "version": "2.1.0",
    "commit_sha": "3f1c2d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e",
    "artifact_sha256": "9b74c9897bac770ffc029102a200c5de5f1e2c7e4b3a2d1c0f9e8d7c6b5a4f3e",
    "kind": "deploy",
    "status": "succeeded",
    "rollback_of": None,
    "change_request": "CR-42",
    "started_by": "cd-platform",
    "started_at": "2026-11-26T09:14:02+01:00",
    "finished_at": "2026-11-26T09:21:40+01:00",
    "succeeded_at": "2026-11-26T09:21:40+01:00",
    "pipeline_url": "https://gitlab.bank.example/ml/fraud-score/-/pipelines/88121",
    "health_url": "https://fraud-score.prod.bank.example/healthz",
    "detail": "",
    "reason": "",
}


class DeploymentsView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes]
    required_scopes = {"POST": Scope.DEPLOYMENTS_WRITE, "GET": Scope.READ}

    @extend_schema(
        operation_id="v1_deployments_list",
        parameters=[DeploymentQuery, *PAGING_PARAMETERS],
        responses={200: page_of("DeploymentPage", s.DeploymentOutput(many=True))},
        examples=[
            OpenApiExample(
                "A page of deployments",
                value={"next": None, "previous": None, "results": [DEPLOYMENT_EXAMPLE]},
                response_only=True,
            )
        ],
        description=(
            "Every deployment, rollback and failed attempt, newest first; cursor paging. A "
            "token needs `read`."
        ),
    )
    def get(self, request: Request) -> Response:
        filters = DeploymentFilters(**query_filters(DeploymentQuery, request))
        paginator = ReadCursor()
        page = paginator.paginate_queryset(deployments_read(filters=filters), request, view=self)
        return paginator.get_paginated_response(s.DeploymentOutput(page, many=True).data)

    @extend_schema(
        request=s.DeploymentInput,
        responses={
            201: s.DeploymentOutput,
            200: OpenApiResponse(s.DeploymentOutput, description="A retry of the same start."),
            403: GATE_DENIED,
            400: ERRORS[400],
            404: OpenApiResponse(
                description="`unknown_environment`, `unknown_model`, `unknown_version`, "
                "`unknown_change_request`: a name that names nothing."
            ),
            409: ERRORS[409],
        },
        description=(
            "CD reports that it starts a deployment. The gate runs again in the same "
            "transaction, under a lock on the change request; a refusal is 403 with every "
            "reason. A retry with the same `pipeline_url` returns the same deployment (200)."
        ),
    )
    @idempotent
    def post(self, request: Request) -> Response:
        payload = s.DeploymentInput(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            deployment, created = deployments.deployment_start(
                actor=request.user, request=request, **payload.validated_data
            )
        except deployments.GateDenied as denied:
            return Response(
                {
                    "code": denied.code,
                    "detail": denied.detail,
                    "reasons": denied.answer.as_dict()["reasons"],
                },
                status=status.HTTP_403_FORBIDDEN,
            )
        return Response(
            s.DeploymentOutput(deployment).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class DeploymentView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes]
    required_scopes = {"GET": Scope.READ}

    @extend_schema(
        operation_id="v1_deployment_retrieve",
        responses={
            200: s.DeploymentOutput,
            404: OpenApiResponse(description="`unknown_deployment`."),
        },
        examples=[OpenApiExample("A deployment", value=DEPLOYMENT_EXAMPLE, response_only=True)],
        description="One deployment by its id. A token needs `read`.",
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.DeploymentOutput(deployment_get(pk=pk)).data)


class DeploymentResultView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes]
    required_scopes = {"POST": Scope.DEPLOYMENTS_WRITE}

    @extend_schema(
        request=s.ResultInput,
        responses={200: s.DeploymentOutput, **ERRORS},
        description=(
            "How the deployment ended. `succeeded` makes it live and uses up its change request; "
            "`failed` leaves the change usable for a retry inside its window. Reporting the same "
            "result again changes nothing."
        ),
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        deployment = get_object_or_404(Deployment, pk=pk)
        payload = s.ResultInput(data=request.data)
        payload.is_valid(raise_exception=True)
        deployment = deployments.deployment_record_result(
            actor=request.user, deployment=deployment, request=request, **payload.validated_data
        )
        return Response(s.DeploymentOutput(deployment).data)


class RollbackView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes]
    required_scopes = {"POST": Scope.DEPLOYMENTS_WRITE}

    @extend_schema(
        request=s.RollbackInput,
        responses={201: s.DeploymentOutput, **ERRORS},
        description=(
            "Put back the version that was live before the latest deployment of this model in "
            "this environment. Needs a reason and no new approval; allowed to the change's "
            "owner, an approver of the environment, or a token with `deployments:write`."
        ),
    )
    @idempotent
    def post(self, request: Request, environment: str, name: str) -> Response:
        payload = s.RollbackInput(data=request.data)
        payload.is_valid(raise_exception=True)
        rollback = deployments.deployment_rollback(
            actor=request.user,
            environment=environment,
            model=name,
            from_version=payload.validated_data["from_version"],
            reason=payload.validated_data["reason"],
            request=request,
        )
        return Response(s.DeploymentOutput(rollback).data, status=status.HTTP_201_CREATED)


class LiveView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes]
    required_scopes: dict = {}

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "at",
                OpenApiTypes.DATETIME,
                description="RFC 3339 moment, with seconds and its offset; what was live then. "
                "Default: now. A moment that does not exist is 400 `invalid_at`.",
            )
        ],
        responses={200: s.LiveOutput, 400: ERRORS[400], 404: ERRORS[404]},
        description=(
            "What is live in the environment, per model (or what was live at `at`): version, "
            "commit, digest, since when, who deployed it, through which change request, and "
            "who signed it."
        ),
    )
    def get(self, request: Request, environment: str) -> Response:
        env = _named(Environment, environment)
        raw = request.query_params.get("at")
        at = None if raw is None else moment_from_query(raw, offset_required=True)
        live = live_in_environment(environment=env, at=at)
        return Response(s.LiveOutput({"environment": env.name, "at": at, "models": live}).data)
