import sys

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import LoginView
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views import defaults
from django.views.decorators.http import require_POST, require_safe

from organisation.forms import SignInForm
from organisation.oidc import provider_enabled, provider_name
from organisation.services import user_sessions_end
from portal.dashboard import dashboard_panels_for
from portal.exceptions import DATABASE_UNREACHABLE
from portal.notifications import notifications_for, notifications_mark_read
from portal.selectors import memberships_of


@require_safe
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

    authentication_form = SignInForm

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["provider_name"] = provider_name() if provider_enabled() else ""
        return context


@require_safe
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


def _profile(request, *, error: str = "", status: int = 200):
    return render(
        request,
        "portal/profile.html",
        {
            "memberships": memberships_of(user=request.user),
            "idle_minutes": settings.SESSION_IDLE_MINUTES,
            "error": error,
        },
        status=status,
    )


@require_safe
def profile(request):
    return _profile(request)


@require_POST
def sign_out_everywhere(request):
    """Ends every session of the person, this one included, after they confirm."""
    if request.POST.get("confirm") != "yes":
        return _profile(
            request,
            error="Tick the box to confirm: every browser signed in as you will be signed out.",
            status=400,
        )
    ended = user_sessions_end(actor=request.user, user=request.user, request=request)
    logout(request)
    messages.success(
        request,
        f"Signed out everywhere: {ended} session{'' if ended == 1 else 's'} ended. Sign in again.",
    )
    return redirect("login")


def not_found(request, exception=None):
    """A URL that matches nothing: JSON under /api/ (tools parse it), the usual page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {
                "code": "not_found",
                "detail": "No such API resource: /api/docs/ lists the API's paths.",
            },
            status=404,
        )
    # A view's Http404 names what is missing; a URL that matches no route carries no sentence.
    said = exception.args[0] if exception is not None and exception.args else None
    return render(
        request,
        "404.html",
        {"detail": said if isinstance(said, str) else "", "request_path": request.path},
        status=404,
    )


def server_error(request):
    """An unexpected error: JSON under /api/, never a stack trace anywhere. The database out of
    reach (the middleware met it before any view) is a 503, so a load balancer retries
    elsewhere; that answer renders no template, as templates would ask the database again."""
    if isinstance(sys.exc_info()[1], (OperationalError, InterfaceError)):
        detail = DATABASE_UNREACHABLE
        if request.path.startswith("/api/"):
            return JsonResponse({"code": "database_unavailable", "detail": detail}, status=503)
        return HttpResponse(detail, status=503, content_type="text/plain")
    if request.path.startswith("/api/"):
        return JsonResponse(
            {
                "code": "server_error",
                "detail": "Something went wrong; it has been logged, and the request may not "
                "have been carried out. Read the resource again before retrying; if it "
                "happens again, tell an administrator the time and this response's "
                "X-Request-ID.",
            },
            status=500,
        )
    return defaults.server_error(request)
