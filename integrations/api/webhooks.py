"""Manage chat and webhook subscriptions over REST: administrators all of them, a token with
`webhooks:write` those of its teams (integrations.webhooks says why). Reads are scoped the
same way: a subscription the caller may not manage is a 404, not a 403, so its existence is
not given away."""

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations import webhooks as services
from integrations.api.webhook_serializers import (
    WebhookCreated,
    WebhookInput,
    WebhookOutput,
    WebhookSecret,
)
from integrations.models import WebhookSubscription
from portal.authentication import TokenScopes, is_service_account
from portal.exceptions import NotFound
from portal.models import Scope, Team


class ManagesWebhooks(permissions.BasePermission):
    """People who are not administrators learn the rule before their input is read."""

    def has_permission(self, request, view) -> bool:
        if not is_service_account(request.user):
            denial = services.manage_denial(request.user, team=None)
            if denial:
                raise denial
        return True


class WebhookView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes, ManagesWebhooks]
    required_scopes = {"*": Scope.WEBHOOKS_WRITE}

    def subscription(self, request: Request, pk: int) -> WebhookSubscription:
        found = self.visible(request).filter(pk=pk).first()
        if found is None:
            raise NotFound(
                f"No webhook subscription {pk} that you manage: GET /api/v1/webhooks/ lists "
                "those you do.",
                code="unknown_webhook",
            )
        return found

    def visible(self, request: Request) -> QuerySet[WebhookSubscription]:
        return services.subscriptions_for(request.user)


class WebhooksView(WebhookView):
    @extend_schema(
        operation_id="v1_webhooks_list",
        responses={200: WebhookOutput(many=True)},
        description="The subscriptions the caller manages, by name.",
    )
    def get(self, request: Request) -> Response:
        return Response(WebhookOutput(self.visible(request), many=True).data)

    @extend_schema(
        operation_id="v1_webhooks_create",
        request=WebhookInput,
        responses={
            201: WebhookCreated,
            403: OpenApiResponse(
                description="`webhooks_admin_only`, `missing_scope`, `token_wrong_team`."
            ),
            404: OpenApiResponse(
                description="`unknown_team`, `unknown_environment`: a name that names nothing."
            ),
            409: OpenApiResponse(description="`webhook_name_taken`."),
        },
        description=(
            "Subscribe a Teams or Slack channel's incoming webhook, or a Standard Webhooks "
            "endpoint, to events. A Standard Webhooks subscription's signing secret is in this "
            "answer and never again."
        ),
    )
    def post(self, request: Request) -> Response:
        payload = WebhookInput(data=request.data)
        payload.is_valid(raise_exception=True)
        fields = dict(payload.validated_data)
        slug = fields.pop("team")
        team = None
        if slug:
            team = Team.objects.filter(slug=slug).first()
            if team is None:
                raise NotFound(f"No team has the slug '{slug}'.", code="unknown_team")
        elif is_service_account(request.user):
            team = request.user.team
        issued = services.webhook_subscription_create(
            actor=request.user, team=team, request=request, **fields
        )
        body = {**WebhookOutput(issued.subscription).data, "secret": issued.secret}
        return Response(body, status=status.HTTP_201_CREATED)


class WebhookDetailView(WebhookView):
    @extend_schema(
        operation_id="v1_webhooks_retrieve",
        responses={200: WebhookOutput},
        description="One subscription; its URL by scheme and host, never its secret.",
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(WebhookOutput(self.subscription(request, pk)).data)


class WebhookRotateView(WebhookView):
    @extend_schema(
        operation_id="v1_webhooks_rotate_secret",
        request=None,
        responses={
            200: WebhookSecret,
            409: OpenApiResponse(
                description="`no_signing_secret`: Teams and Slack subscriptions have none."
            ),
        },
        description=(
            "A new signing secret, shown once. The previous one goes on signing alongside it "
            "for a while (two signatures in `webhook-signature`), so receivers can switch."
        ),
    )
    def post(self, request: Request, pk: int) -> Response:
        subscription = self.subscription(request, pk)
        secret = services.webhook_secret_rotate(
            actor=request.user, subscription=subscription, request=request
        )
        subscription.refresh_from_db()
        return Response(
            WebhookSecret(
                {
                    "secret": secret,
                    "previous_secret_signs_until": subscription.previous_secret_until,
                }
            ).data
        )


class WebhookDeactivateView(WebhookView):
    @extend_schema(
        operation_id="v1_webhooks_deactivate",
        request=None,
        responses={200: WebhookOutput},
        description="Stop sending to the subscription; what was still pending is cancelled.",
    )
    def post(self, request: Request, pk: int) -> Response:
        subscription = services.webhook_subscription_deactivate(
            actor=request.user, subscription=self.subscription(request, pk), request=request
        )
        return Response(WebhookOutput(subscription).data)
