from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.authentication import is_service_account
from portal.selectors import memberships_of


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
