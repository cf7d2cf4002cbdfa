from django.shortcuts import render

from portal.selectors import memberships_of


def dashboard(request):
    return render(
        request,
        "portal/dashboard.html",
        {"memberships": memberships_of(user=request.user)},
    )
