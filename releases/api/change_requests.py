"""File and read change requests over REST (DESIGN.md, REST contract v1).

People file change requests: a request names its requester, who answers for it and whose team
reviews it, so a service account (whatever its scopes, `deployments:write` included) cannot
file one. Any caller, a token with any scope included, may read one by its number (CI follows
its own change); the list and the sign-offs, for reports, take `read` from a token, and the
evidence pack, which carries audit events, `audit:read`."""

from django.contrib.auth.validators import UnicodeUsernameValidator
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.authentication import TokenScopes
from portal.models import Scope
from portal.pagination import PAGING_PARAMETERS, OldestFirst, ReadCursor, page_of, query_filters
from portal.serializers import MomentField, Untrimmed
from releases import hooks
from releases.api.change_request_serializers import (
    ChangeRequestInput,
    ChangeRequestOutput,
    SignOffOutput,
)
from releases.evidence_pack import evidence_pack_build
from releases.models import ChangeRequest, SignOffKind
from releases.permissions import person_denial
from releases.selectors import change_requests as selectors
from releases.services import change_requests as services
from releases.states import Kind, State


class PeopleFile(permissions.BasePermission):
    """Asked before the payload is read, so a token learns the rule (`people_only`), not the
    payload's shape."""

    def has_permission(self, request, view) -> bool:
        refusal = None
        if request.method not in permissions.SAFE_METHODS:
            refusal = person_denial(request.user)
        if refusal is not None:
            raise refusal
        return True


class ChangeRequestQuery(Untrimmed):
    """The list's query string. A value of the wrong shape is 400 `invalid_filter`; a name that
    is well formed but matches nothing gives an empty page."""

    state = serializers.ChoiceField(choices=State.choices, required=False)
    kind = serializers.ChoiceField(choices=Kind.choices, required=False)
    environment = serializers.SlugField(max_length=50, required=False)
    model = serializers.SlugField(max_length=100, required=False, help_text="The model's name.")
    team = serializers.SlugField(
        max_length=100,
        required=False,
        help_text="A team's slug: changes it filed or signed (a standing sign-off).",
    )
    requester = serializers.CharField(
        max_length=150, required=False, validators=[UnicodeUsernameValidator()]
    )
    updated_since = MomentField(
        required=False,
        help_text="ISO-8601 with its offset: changes whose record or sign-offs changed since.",
    )


class SignOffQuery(Untrimmed):
    kind = serializers.ChoiceField(choices=SignOffKind.choices, required=False)
    voided = serializers.BooleanField(
        required=False,
        help_text="true: only voided or withdrawn sign-offs; false: only those that stand.",
    )


CHANGE_REQUEST_EXAMPLE = {
    "id": 42,
    "number": "CR-42",
    "kind": "normal",
    "state": "in_approval",
    "model": "fraud-score",
    "version": "2.1.0",
    "model_version_id": 7,
    "commit_sha": "3f1c2d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e",
    "artifact_sha256": "9b74c9897bac770ffc029102a200c5de5f1e2c7e4b3a2d1c0f9e8d7c6b5a4f3e",
    "environment": "prod",
    "requester": "requester",
    "team": "data-science",
    "title": "Release fraud-score 2.1.0",
    "justification": "Better recall on card-not-present fraud.",
    "risk": "Scores shift for 2% of transactions.",
    "test_evidence": "Backtest on October.",
    "rollback_plan": "Roll back to 2.0.0.",
    "window_start": "2026-11-26T09:00:00+01:00",
    "window_end": "2026-11-26T13:00:00+01:00",
    "incident_ref": "",
    "retires_model": False,
    "content_digest": "4d2a0b5e6f7c8d9e0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071",
    "policy_version": 3,
    "created_at": "2026-11-20T10:12:03+01:00",
    "updated_at": "2026-11-21T16:40:55+01:00",
    "submitted_at": "2026-11-20T10:12:03+01:00",
    "retrospective_due_at": None,
    "sign_offs": [],
    "external_links": [
        {
            "system": "ServiceNow",
            "reference": "CHG0030001",
            "url": "https://bank.service-now.example/change_request.do?sys_id=4f1c",
        }
    ],
}
SIGN_OFF_EXAMPLE = {
    "id": 311,
    "kind": "approval",
    "team": "model-risk",
    "signer": "risk",
    "decision": "approve",
    "comment": "Validation report VR-2026-118 covers this build.",
    "meaning": "I approve CR-42 for prod on behalf of Model Risk.",
    "content_digest": "4d2a0b5e6f7c8d9e0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071",
    "policy_version": 3,
    "reauthenticated": True,
    "signed_at": "2026-11-21T16:40:55+01:00",
    "voided_at": "2026-11-22T08:03:10+01:00",
    "voided_reason": "The backtest covered the wrong month.",
    "withdrawn_by": "risk",
}


def _page_example(name: str, item: dict) -> OpenApiExample:
    return OpenApiExample(
        name,
        value={
            "next": "https://gatehouse.bank.example/api/v1/…?cursor=cD0xMjM%3D",
            "previous": None,
            "results": [item],
        },
        response_only=True,
    )


class ChangeRequestsView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes, PeopleFile]
    required_scopes = {"GET": Scope.READ}

    @extend_schema(
        operation_id="v1_change_requests_list",
        parameters=[ChangeRequestQuery, *PAGING_PARAMETERS],
        responses={200: page_of("ChangeRequestPage", ChangeRequestOutput(many=True))},
        examples=[_page_example("A page of change requests", CHANGE_REQUEST_EXAMPLE)],
        description=(
            "Change requests, newest first, with every sign-off; cursor paging. A token needs "
            "`read`. An unknown filter or a value of the wrong shape is 400 `invalid_filter`, a "
            "cursor that is not one of ours 400 `invalid_cursor`."
        ),
    )
    def get(self, request: Request) -> Response:
        filters = selectors.ChangeRequestFilters(**query_filters(ChangeRequestQuery, request))
        paginator = ReadCursor()
        page = paginator.paginate_queryset(
            selectors.change_requests_read(filters=filters), request, view=self
        )
        context = {"external_links": hooks.external_links(page)}
        return paginator.get_paginated_response(
            ChangeRequestOutput(page, many=True, context=context).data
        )

    @extend_schema(
        request=ChangeRequestInput,
        responses={
            201: ChangeRequestOutput,
            400: OpenApiResponse(description="Validation errors: field → messages."),
            403: OpenApiResponse(
                description="A token (people file change requests), or a rule denial "
                "`{code, detail}`: window_in_past, freeze_in_effect, emergency_not_allowed, "
                "retrospective_overdue, not_owner_team, …"
            ),
            404: OpenApiResponse(description="unknown_build"),
            409: OpenApiResponse(description="`{code, detail}`, e.g. no_policy."),
        },
        description=(
            "File a change request for one registered build to one environment. By default it "
            "is submitted at once (to peer review, the approval teams or, for an emergency, the "
            "emergency approvers); `submit: false` keeps a draft."
        ),
    )
    def post(self, request: Request) -> Response:
        payload = ChangeRequestInput(data=request.data)
        payload.is_valid(raise_exception=True)
        fields = dict(payload.validated_data)
        file = (
            services.change_request_file
            if fields.pop("submit")
            else (services.change_request_create)
        )
        change_request = file(actor=request.user, request=request, **fields)
        found = selectors.change_request_get(
            number=change_request.number, queryset=selectors.change_requests_detailed()
        )
        return Response(ChangeRequestOutput(found).data, status=status.HTTP_201_CREATED)


class ChangeRequestView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes]
    required_scopes: dict = {}

    @extend_schema(
        responses={200: ChangeRequestOutput, 404: OpenApiResponse(description="Unknown number.")},
        examples=[
            OpenApiExample("A change request", value=CHANGE_REQUEST_EXAMPLE, response_only=True)
        ],
        description="A change request by its number (`CR-42`), with every sign-off, voided "
        "ones included.",
    )
    def get(self, request: Request, number: str) -> Response:
        found = selectors.change_request_get(
            number=number, queryset=selectors.change_requests_detailed()
        )
        return Response(ChangeRequestOutput(found).data)


class SignOffsView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes]
    required_scopes = {"GET": Scope.READ}

    @extend_schema(
        operation_id="v1_change_request_sign_offs_list",
        parameters=[SignOffQuery, *PAGING_PARAMETERS],
        responses={
            200: page_of("SignOffPage", SignOffOutput(many=True)),
            404: OpenApiResponse(description="Unknown number: `unknown_change_request`."),
        },
        examples=[_page_example("A withdrawn approval", SIGN_OFF_EXAMPLE)],
        description=(
            "Every sign-off of a change request in the order they were given: peer review, "
            "approvals, emergency authorisation, retrospectives, with the signer, the team they "
            "signed for, the decision, the meaning they saw and when. Voided ones stay, with "
            "`voided_at` and `voided_reason`; `withdrawn_by` names the signer who withdrew one "
            "(null on one voided by an edit). A token needs `read`."
        ),
    )
    def get(self, request: Request, number: str) -> Response:
        filters = query_filters(SignOffQuery, request)
        change_request = selectors.change_request_get(
            number=number, queryset=ChangeRequest.objects.all()
        )
        paginator = OldestFirst()
        page = paginator.paginate_queryset(
            selectors.sign_offs_of(change_request=change_request, **filters), request, view=self
        )
        return paginator.get_paginated_response(SignOffOutput(page, many=True).data)


class ChangeRequestEvidenceView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes]
    required_scopes = {"GET": Scope.AUDIT_READ}

    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiResponse(
                description="The evidence pack: evidence.pdf, evidence.json, events.jsonl with "
                "Merkle inclusion proofs, head.json (signed tree head and manifest), "
                "public_key.pem. Verify with `python -m audit.offline_verify --evidence`."
            ),
            404: OpenApiResponse(description="Unknown number."),
            409: OpenApiResponse(description="`chain_broken`: the trail does not verify."),
        },
        description="Everything an auditor takes away about one change request, signed.",
    )
    def get(self, request: Request, number: str) -> HttpResponse:
        found = selectors.change_request_get(number=number, queryset=ChangeRequest.objects.all())
        name, pack = evidence_pack_build(change_request=found)
        response = HttpResponse(pack, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
