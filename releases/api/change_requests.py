"""File and read change requests over REST (DESIGN.md, REST contract v1).

People file change requests: a request names its requester, who answers for it and whose team
reviews it, so a service account (whatever its scopes, `deployments:write` included) cannot
file one. Any caller, a token with any scope included, may read one; its evidence pack, which
carries audit events, takes `audit:read` from a token."""

from django.db.models import Prefetch
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.authentication import TokenScopes
from portal.models import Scope
from releases import hooks
from releases.api.change_request_serializers import ChangeRequestInput, ChangeRequestOutput
from releases.evidence_pack import evidence_pack_build
from releases.models import ChangeRequest, SignOff
from releases.permissions import person_denial
from releases.selectors.change_requests import change_request_get, change_requests
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


def _detailed():
    return change_requests().prefetch_related(
        Prefetch(
            "sign_offs",
            queryset=SignOff.objects.select_related(
                "team", "signer", "policy", "withdrawn_by"
            ).order_by("signed_at", "id"),
        )
    )


class ChangeRequestFilters(serializers.Serializer):
    """The list's query string: an unknown state is a 400, not an empty page."""

    state = serializers.ChoiceField(choices=State.choices, required=False)
    kind = serializers.ChoiceField(choices=Kind.choices, required=False)
    environment = serializers.SlugField(max_length=50, required=False, source="environment__name")


class ChangeRequestPage(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ChangeRequestOutput(many=True)


class NewestFirst(CursorPagination):
    """A cursor, not a page number, so that filing a change between two calls neither repeats
    nor skips one."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class ChangeRequestsView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes, PeopleFile]
    required_scopes: dict = {}

    @extend_schema(
        operation_id="v1_change_requests_list",
        parameters=[
            ChangeRequestFilters,
            OpenApiParameter("cursor", str, description="From `next` or `previous`."),
            OpenApiParameter("page_size", int, description="1 to 200; 50 by default."),
        ],
        responses={
            200: ChangeRequestPage,
            404: OpenApiResponse(description="A cursor that is not one of ours."),
            400: OpenApiResponse(description="Validation errors: field → messages."),
        },
        description="Change requests, newest first, with their sign-offs; cursor paging.",
    )
    def get(self, request: Request) -> Response:
        filters = ChangeRequestFilters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = NewestFirst()
        page = paginator.paginate_queryset(_detailed().filter(**filters.validated_data), request)
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
        found = change_request_get(number=change_request.number, queryset=_detailed())
        return Response(ChangeRequestOutput(found).data, status=status.HTTP_201_CREATED)


class ChangeRequestView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes]
    required_scopes: dict = {}

    @extend_schema(
        responses={200: ChangeRequestOutput, 404: OpenApiResponse(description="Unknown number.")},
        description="A change request by its number (`CR-42`), with every sign-off, voided "
        "ones included.",
    )
    def get(self, request: Request, number: str) -> Response:
        found = change_request_get(number=number, queryset=_detailed())
        return Response(ChangeRequestOutput(found).data)


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
        found = change_request_get(number=number, queryset=ChangeRequest.objects.all())
        name, pack = evidence_pack_build(change_request=found)
        response = HttpResponse(pack, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
