from django.http import StreamingHttpResponse
from django.utils.http import urlencode
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import keys, selectors
from audit.api.serializers import (
    EventPageSerializer,
    EventQuerySerializer,
    ExportQuerySerializer,
    VerifyStatusSerializer,
)
from audit.export import export_lines
from portal.authentication import TokenScopes
from portal.models import Scope


class CanReadAudit(permissions.BasePermission):
    message = "Only auditors, change managers, administrators and audit:read tokens."

    def has_permission(self, request, view) -> bool:
        return selectors.can_read_audit(request.user)


class AuditReadView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes, CanReadAudit]
    required_scopes = {"*": Scope.AUDIT_READ.value}


class AuditEventListView(AuditReadView):
    """Audit events, newest first, filtered; follow `next` (keyset on the sequence number).
    The query is read as given: an empty value is an error, not a filter left out."""

    @extend_schema(parameters=[EventQuerySerializer], responses=EventPageSerializer)
    def get(self, request):
        query = EventQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        filters = query.filters()
        page = selectors.audit_event_page(
            user=request.user,
            filters=filters,
            cursor=query.validated_data.get("cursor"),
            limit=query.validated_data["limit"],
        )
        next_url = None
        if page.next_cursor is not None:
            params = {
                **filters.as_query(),
                "limit": query.validated_data["limit"],
                "cursor": page.next_cursor,
            }
            next_url = request.build_absolute_uri(f"{request.path}?{urlencode(params)}")
        return Response(
            EventPageSerializer(
                {"results": page.events, "next_cursor": page.next_cursor, "next": next_url}
            ).data
        )


class AuditVerifyStatusView(AuditReadView):
    """The last verification's result, the latest signed checkpoint and the public key."""

    @extend_schema(responses=VerifyStatusSerializer)
    def get(self, request):
        return Response(
            VerifyStatusSerializer(
                {
                    "last_verification": selectors.audit_last_verification(user=request.user),
                    "latest_checkpoint": selectors.audit_latest_checkpoint(user=request.user),
                    "key_id": keys.current_key_id(),
                    "public_key": keys.public_key_pem(),
                    "keys": keys.published_keys(),
                }
            ).data
        )


class AuditExportView(AuditReadView):
    """The signed export (JSON Lines) of the trail, or of the events between `since` and
    `until`; the same file as `manage.py audit_export`, for `python -m audit.offline_verify`."""

    @extend_schema(
        parameters=[ExportQuerySerializer],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(
                OpenApiTypes.STR, description="the export, one JSON object per line"
            )
        },
    )
    def get(self, request):
        query = ExportQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        lines = export_lines(
            since=query.validated_data.get("since"), until=query.validated_data.get("until")
        )
        response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
        response["Content-Disposition"] = 'attachment; filename="audit-trail.jsonl"'
        return response
