from django.urls import path

from portal.api import views

urlpatterns = [path("whoami/", views.WhoAmIView.as_view(), name="api-whoami")]
