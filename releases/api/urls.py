from django.urls import path

from releases.api import change_requests

urlpatterns: list = [
    # Change requests (releases/api/change_requests.py)
    path(
        "change-requests/",
        change_requests.ChangeRequestsView.as_view(),
        name="api-change-requests",
    ),
    path(
        "change-requests/<str:number>/",
        change_requests.ChangeRequestView.as_view(),
        name="api-change-request",
    ),
    # Gate, deployments, rollback, live (releases/api/deployments.py)
]
