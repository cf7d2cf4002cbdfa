from django.urls import path  # noqa: F401 - used as the sections below fill in

urlpatterns: list = [
    # Change requests (releases/api/change_requests.py)
    # Gate, deployments, rollback, live (releases/api/deployments.py)
]
