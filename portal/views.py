from django.shortcuts import redirect, render
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
