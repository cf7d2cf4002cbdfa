from django.urls import path

from integrations.api import webhooks

urlpatterns: list = [
    path("webhooks/", webhooks.WebhooksView.as_view(), name="api-webhooks"),
    path("webhooks/<int:pk>/", webhooks.WebhookDetailView.as_view(), name="api-webhook"),
    path(
        "webhooks/<int:pk>/rotate-secret/",
        webhooks.WebhookRotateView.as_view(),
        name="api-webhook-rotate-secret",
    ),
    path(
        "webhooks/<int:pk>/deactivate/",
        webhooks.WebhookDeactivateView.as_view(),
        name="api-webhook-deactivate",
    ),
]
