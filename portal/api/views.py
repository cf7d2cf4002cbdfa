from django.conf import settings
from django.contrib.auth.validators import UnicodeUsernameValidator
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.authentication import TokenScopes, is_service_account
from portal.models import Notification, Scope
from portal.pagination import PAGING_PARAMETERS, ReadCursor, page_of, query_filters
from portal.selectors import NotificationFilters, memberships_of, notifications_visible_to
from portal.serializers import MomentField, Untrimmed


class WhoAmIView(APIView):
    """Who the caller is: lets a pipeline check its token, its scopes, the teams whose models it
    acts on and the environments it is limited to (empty: all) before it needs them."""

    @extend_schema(
        responses=inline_serializer(
            "WhoAmI",
            {
                "id": serializers.IntegerField(),
                "kind": serializers.ChoiceField(["user", "service"]),
                "name": serializers.CharField(),
                "teams": serializers.ListField(child=serializers.CharField()),
                "scopes": serializers.ListField(child=serializers.CharField()),
                "environments": serializers.ListField(child=serializers.CharField()),
            },
        )
    )
    def get(self, request):
        caller = request.user
        if is_service_account(caller):
            return Response(
                {
                    "id": caller.pk,
                    "kind": "service",
                    "name": caller.name,
                    "teams": [
                        caller.team.slug,
                        *caller.granted_teams.order_by("slug").values_list("slug", flat=True),
                    ],
                    "scopes": caller.scopes,
                    "environments": caller.environments,
                }
            )
        return Response(
            {
                "id": caller.pk,
                "kind": "user",
                "name": caller.get_username(),
                "teams": [m.team.slug for m in memberships_of(user=caller)],
                "scopes": [],
                "environments": [],
            }
        )


class NotificationOutput(serializers.ModelSerializer):
    recipient = serializers.SlugRelatedField(slug_field="username", read_only=True)
    link = serializers.SerializerMethodField(help_text="The page it is about, or empty.")

    class Meta:
        model = Notification
        fields = [
            "id",
            "recipient",
            "subject",
            "body",
            "reason",
            "link",
            "created_at",
            "read_at",
            "emailed_at",
        ]

    def get_link(self, notification: Notification) -> str:
        return f"{settings.PORTAL_BASE_URL}{notification.link}" if notification.link else ""


class NotificationQuery(Untrimmed):
    team = serializers.SlugField(
        max_length=100,
        required=False,
        help_text="Only the people of this team; a token names one of the teams it acts for.",
    )
    recipient = serializers.CharField(
        max_length=150, required=False, validators=[UnicodeUsernameValidator()]
    )
    unread = serializers.BooleanField(required=False, help_text="true: not yet read.")
    since = MomentField(required=False, help_text="Told at or after; ISO-8601 with its offset.")


NOTIFICATION_EXAMPLE = {
    "id": 981,
    "recipient": "risk",
    "subject": "CR-42 waits for your approval",
    "body": "fraud-score 2.1.0 to prod, filed by requester.",
    "reason": "You are an approver of Model Risk, an approval team of prod.",
    "link": "https://gatehouse.bank.example/releases/change-requests/CR-42/",
    "created_at": "2026-11-21T09:02:11+01:00",
    "read_at": None,
    "emailed_at": "2026-11-21T09:03:00+01:00",
}


class NotificationsView(APIView):
    """What people were told. A person reads their own; a token with `read` those of the
    people of the teams it acts for (its own and the granted ones)."""

    permission_classes = [permissions.IsAuthenticated, TokenScopes]
    required_scopes = {"GET": Scope.READ}

    @extend_schema(
        operation_id="v1_notifications_list",
        parameters=[NotificationQuery, *PAGING_PARAMETERS],
        responses={200: page_of("NotificationPage", NotificationOutput(many=True))},
        examples=[
            OpenApiExample(
                "A page of notifications",
                value={"next": None, "previous": None, "results": [NOTIFICATION_EXAMPLE]},
                response_only=True,
            )
        ],
        description=(
            "Notifications, newest first; cursor paging. A person gets their own; a token with "
            "`read` those of the members of its team and of the teams granted to it, and 403 "
            "`token_wrong_team` for `?team=` of another team. Reading them here does not mark "
            "them read."
        ),
    )
    def get(self, request):
        filters = NotificationFilters(**query_filters(NotificationQuery, request))
        paginator = ReadCursor()
        page = paginator.paginate_queryset(
            notifications_visible_to(caller=request.user, filters=filters), request, view=self
        )
        return paginator.get_paginated_response(NotificationOutput(page, many=True).data)
