"""Batch runs attest what they run: `POST /api/v1/runs/` (issue 20). The answer is 200 whether
or not the run may go ahead, as the gate's is: `allowed` is the answer, `code` the reason."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.authentication import TokenScopes
from portal.idempotency import idempotent
from portal.models import Scope
from releases.api import deployment_serializers as s
from releases.services import runs


class RunsView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes]
    required_scopes = {"POST": Scope.RUNS_WRITE}

    @extend_schema(
        operation_id="runs_attest",
        request=s.RunInput,
        responses={
            201: s.RunOutput,
            200: OpenApiResponse(s.RunOutput, description="The same attestation again."),
            400: OpenApiResponse(description="Validation errors: field → messages."),
            403: OpenApiResponse(description="`{code, detail}`: missing_scope, token reach."),
            404: OpenApiResponse(description="`unknown_environment`, `unknown_model`."),
            409: OpenApiResponse(description="`run_conflict`: the job attested another digest."),
        },
        description=(
            "A batch job at its start: is this digest the one live in the environment? "
            "`allowed: false` with `code` `digest_not_live` (the run is flagged as an "
            "unauthorised change) or `nothing_live`. Needs `runs:write`."
        ),
    )
    @idempotent
    def post(self, request: Request) -> Response:
        payload = s.RunInput(data=request.data)
        payload.is_valid(raise_exception=True)
        run, created = runs.batch_run_attest(
            actor=request.user, request=request, **payload.validated_data
        )
        return Response(
            runs.batch_run_answer(run),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
