"""The webhooks' pages, for administrators: the subscriptions, each one's delivery log, and a
"Send test" that posts a `gatehouse.test` message at once and shows the answer. Subscriptions
are made and changed in the admin or over the API (integrations.webhooks)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from integrations import webhooks as services
from integrations.models import WebhookAttempt, WebhookSubscription

RECENT_DELIVERIES = 50


def _require_manager(request: HttpRequest) -> None:
    denial = services.manage_denial(request.user, team=None)
    if denial:
        raise PermissionDenied(denial.detail)


def _get(request: HttpRequest, pk: int) -> WebhookSubscription:
    subscription = services.subscriptions_for(request.user).filter(pk=pk).first()
    if subscription is None:
        raise Http404("No such webhook subscription: the Webhooks page lists those you manage.")
    return subscription


@require_GET
def webhook_list(request: HttpRequest) -> HttpResponse:
    _require_manager(request)
    return render(
        request,
        "integrations/webhook_list.html",
        {"subscriptions": services.subscriptions_for(request.user)},
    )


@require_GET
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require_manager(request)
    subscription = _get(request, pk)
    deliveries = subscription.deliveries.select_related("event").prefetch_related(
        Prefetch("log", queryset=WebhookAttempt.objects.order_by("number"))
    )[:RECENT_DELIVERIES]
    return render(
        request,
        "integrations/webhook_detail.html",
        {"subscription": subscription, "deliveries": deliveries},
    )


@require_POST
def webhook_test(request: HttpRequest, pk: int) -> HttpResponse:
    _require_manager(request)
    subscription = _get(request, pk)
    try:
        attempt = services.webhook_test_send(
            actor=request.user, subscription=subscription, request=request
        )
    except ValidationError as invalid:
        messages.error(request, " ".join(invalid.messages))
        return redirect("integrations:webhook", pk=pk)
    if attempt.succeeded:
        messages.success(
            request,
            f"Test delivered: HTTP {attempt.status_code} in {attempt.duration_ms} ms. "
            f"Answer: {attempt.answer or '(empty)'}",
        )
    else:
        messages.error(
            request,
            f"Test not delivered: {attempt.error} ({attempt.duration_ms} ms). "
            f"Answer: {attempt.answer or '(none)'}",
        )
    return redirect("integrations:webhook", pk=pk)
