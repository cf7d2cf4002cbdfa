from django.urls import path  # noqa: F401 - used as the sections below fill in

app_name = "releases"

urlpatterns: list = [
    # Change requests, sign-offs, freezes, emergencies (releases/views/change_requests.py)
    # Environments, live and as-of views, deployments, rollback (releases/views/environments.py)
]
