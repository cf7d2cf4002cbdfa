from django.urls import path

from registry.api import views

urlpatterns = [
    path("datasets/", views.DatasetVersionsView.as_view(), name="api-datasets"),
    path("models/", views.ModelsView.as_view(), name="api-models"),
    path("inventory/", views.InventoryView.as_view(), name="api-inventory"),
    path(
        "models/<slug:name>/inventory/",
        views.ModelInventoryView.as_view(),
        name="api-model-inventory",
    ),
    path(
        "models/<slug:name>/validations/",
        views.ModelValidationsView.as_view(),
        name="api-model-validations",
    ),
    path(
        "models/<slug:name>/validations/<int:pk>/findings/",
        views.ValidationFindingsView.as_view(),
        name="api-validation-findings",
    ),
    path(
        "models/<slug:name>/validations/<int:pk>/conclude/",
        views.ValidationConcludeView.as_view(),
        name="api-validation-conclude",
    ),
    path(
        "models/<slug:name>/findings/<int:pk>/close/",
        views.FindingCloseView.as_view(),
        name="api-finding-close",
    ),
    path(
        "models/<slug:name>/versions/",
        views.ModelVersionsView.as_view(),
        name="api-model-versions",
    ),
    path(
        "models/<slug:name>/versions/<str:version>/",
        views.ModelVersionView.as_view(),
        name="api-model-version",
    ),
]
