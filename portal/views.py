from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views import defaults
from django.views.decorators.http import require_POST

from portal.notifications import notifications_for, notifications_mark_read
from portal.selectors import memberships_of


def dashboard(request):
    return render(
        request,
        "portal/dashboard.html",
        {"memberships": memberships_of(user=request.user)},
    )


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
    """An unexpected error: JSON under /api/, never a stack trace anywhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"code": "server_error", "detail": "Something went wrong; it has been logged."},
            status=500,
        )
    return defaults.server_error(request)
