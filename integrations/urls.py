from django.urls import path

from integrations import webhook_views

app_name = "integrations"

urlpatterns: list = [
    path("webhooks/", webhook_views.webhook_list, name="webhooks"),
    path("webhooks/<int:pk>/", webhook_views.webhook_detail, name="webhook"),
    path("webhooks/<int:pk>/test/", webhook_views.webhook_test, name="webhook-test"),
]
