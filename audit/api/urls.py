from django.urls import path

from audit.api import views

urlpatterns = [
    path("audit/events/", views.AuditEventListView.as_view(), name="api-audit-events"),
    path("audit/verify/", views.AuditVerifyStatusView.as_view(), name="api-audit-verify"),
    path("audit/export/", views.AuditExportView.as_view(), name="api-audit-export"),
]
