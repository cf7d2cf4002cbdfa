from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("", views.event_list, name="events"),
    path("objects/<str:object_type>/<str:object_id>/", views.object_timeline, name="timeline"),
    path("export.csv", views.export_csv, name="export-csv"),
    path("export.jsonl", views.export_jsonl, name="export-jsonl"),
    path("public-key/", views.public_key, name="public-key"),
    path("public-key.pem", views.public_key_pem, name="public-key-pem"),
]
