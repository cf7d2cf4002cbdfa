from django.urls import path

from releases.api import (
    admission,
    change_requests,
    deployments,
    environments,
    platforms,
    runs,
    search,
)

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
    path(
        "change-requests/<str:number>/sign-offs/",
        change_requests.SignOffsView.as_view(),
        name="api-change-request-sign-offs",
    ),
    path(
        "change-requests/<str:number>/evidence/",
        change_requests.ChangeRequestEvidenceView.as_view(),
        name="api-change-request-evidence",
    ),
    # Gate, deployments, rollback, live (releases/api/deployments.py)
    path("gate/", deployments.GateView.as_view(), name="api-gate"),
    path("deployments/", deployments.DeploymentsView.as_view(), name="api-deployments"),
    path("deployments/<int:pk>/", deployments.DeploymentView.as_view(), name="api-deployment"),
    path(
        "deployments/<int:pk>/result/",
        deployments.DeploymentResultView.as_view(),
        name="api-deployment-result",
    ),
    # Environments and the policy in force (releases/api/environments.py)
    path("environments/", environments.EnvironmentsView.as_view(), name="api-environments"),
    path(
        "environments/<str:environment>/",
        environments.EnvironmentView.as_view(),
        name="api-environment",
    ),
    path(
        "environments/<str:environment>/models/<str:name>/rollback/",
        deployments.RollbackView.as_view(),
        name="api-rollback",
    ),
    path(
        "environments/<str:environment>/live/",
        deployments.LiveView.as_view(),
        name="api-live",
    ),
    path("runs/", runs.RunsView.as_view(), name="api-runs"),
    # The search box's answer (releases/api/search.py)
    path("search/", search.SearchView.as_view(), name="api-search"),
    # The platforms' own webhooks (releases/api/platforms.py), outside the OpenAPI schema
    path(
        "platforms/gitlab/deployments/",
        platforms.GitLabDeploymentHookView.as_view(),
        name="api-platform-gitlab",
    ),
    path(
        "platforms/github/events/",
        platforms.GitHubAppHookView.as_view(),
        name="api-platform-github",
    ),
    # Asked by the cluster (releases/api/admission.py)
    path(
        "platforms/kubernetes/admission/",
        admission.AdmissionView.as_view(),
        name="api-kubernetes-admission",
    ),
]
