"""The audit trail in the Django admin: read-only for everyone, superusers included. The trail
changes only through `audit_record`; the database refuses everything else anyway."""

from django.contrib import admin

from audit.models import AuditCheckpoint, AuditEvent, AuditVerification
from audit.selectors import can_read_audit


class TrailNotAdminLog:
    """Writes no `django_admin_log` entries. That table is an ordinary one the application role
    can edit, so it is no evidence; every admin write records its audit event through a service
    instead, and a second log that could be made to disagree with the trail would only raise the
    question which one is true."""

    def log_addition(self, request, obj, message):
        return None

    def log_change(self, request, obj, message):
        return None

    def log_deletions(self, request, queryset):
        return None


class ReadOnlyAdmin(admin.ModelAdmin):
    show_full_result_count = False

    def has_module_permission(self, request) -> bool:
        return can_read_audit(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return can_read_audit(request.user)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        return {}


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("seq", "occurred_at", "actor_name", "action", "object_repr", "environment")
    list_filter = ("actor_kind",)
    ordering = ("-seq",)


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("id", "size", "tip_hash", "key_id", "created_at", "created_by")


@admin.register(AuditVerification)
class AuditVerificationAdmin(ReadOnlyAdmin):
    list_display = ("finished_at", "ok", "events_checked", "first_bad_seq", "run_by")
