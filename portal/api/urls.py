from django.urls import path

from portal.api import views

urlpatterns = [
    path("whoami/", views.WhoAmIView.as_view(), name="api-whoami"),
    path("notifications/", views.NotificationsView.as_view(), name="api-notifications"),
]
