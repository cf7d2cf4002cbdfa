from django.urls import path

from registry import views

app_name = "registry"

urlpatterns = [
    path("", views.model_list, name="models"),
    path("models/<slug:name>/", views.model_detail, name="model"),
    path("models/<slug:name>/validations/", views.validation_new, name="validation-new"),
    path(
        "models/<slug:name>/validations/<int:pk>/conclude/",
        views.validation_conclude,
        name="validation-conclude",
    ),
    path(
        "models/<slug:name>/findings/<int:pk>/close/",
        views.finding_close,
        name="finding-close",
    ),
    path("models/<slug:name>/versions/<str:version>/", views.version_detail, name="version"),
    path("datasets/", views.dataset_list, name="datasets"),
    path("inventory/", views.inventory, name="inventory"),
    path("documents/<int:pk>/", views.document_download, name="document"),
    path("inventory.csv", views.inventory_export, {"fmt": "csv"}, name="inventory-csv"),
    path("inventory.xlsx", views.inventory_export, {"fmt": "xlsx"}, name="inventory-xlsx"),
    path("ci/gatehouse_ci.py", views.ci_helper, name="ci-helper"),
    path("ci/gatehouse_ci.py.sha256", views.ci_helper_sha256, name="ci-helper-sha256"),
]
