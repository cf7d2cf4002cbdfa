import sys

from django.contrib.auth.views import LoginView
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views import defaults
from django.views.decorators.http import require_POST

from organisation.oidc import provider_enabled, provider_name
from portal.dashboard import dashboard_panels_for
from portal.notifications import notifications_for, notifications_mark_read
from portal.selectors import memberships_of


def dashboard(request):
    return render(
        request,
        "portal/dashboard.html",
        {
            "panels": dashboard_panels_for(user=request.user),
            "memberships": memberships_of(user=request.user),
        },
    )


class SignInView(LoginView):
    """The sign-in page: username and password, and "Sign in with …" where single sign-on is
    configured."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["provider_name"] = provider_name() if provider_enabled() else ""
        return context


def notification_list(request):
    return render(
        request,
        "portal/notifications.html",
        {"notifications": notifications_for(user=request.user)[:200]},
    )


@require_POST
def notifications_read(request):
    notifications_mark_read(actor=request.user)
    return redirect("notifications")


def not_found(request, exception=None):
    """A URL that matches nothing: JSON under /api/ (tools parse it), the usual page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "detail": "No such API resource."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """An unexpected error: JSON under /api/, never a stack trace anywhere. The database out of
    reach (the middleware met it before any view) is a 503, so a load balancer retries
    elsewhere; that answer renders no template, as templates would ask the database again."""
    if isinstance(sys.exc_info()[1], (OperationalError, InterfaceError)):
        detail = "The database cannot be reached; retry."
        if request.path.startswith("/api/"):
            return JsonResponse({"code": "database_unavailable", "detail": detail}, status=503)
        return HttpResponse(detail, status=503, content_type="text/plain")
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"code": "server_error", "detail": "Something went wrong; it has been logged."},
            status=500,
        )
    return defaults.server_error(request)
