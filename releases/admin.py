"""The Django admin for environments, policies, freezes and maintenance windows, through the
services: saving a policy writes its next version (never edits one), and every change is audited
like any other path.
Change requests and sign-offs are read-only here: they move only through their services."""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse

from organisation.admin import ServiceBackedAdmin
from portal.exceptions import DomainError
from releases.models import (
    ChangeRequest,
    Environment,
    EnvironmentPolicy,
    FreezeWindow,
    MaintenanceWindow,
    SignOff,
)
from releases.services import calendar as calendar_services
from releases.services import policy as services

RULE_FIELDS = (
    "needs_change_request",
    "needs_peer_review",
    "approval_teams",
    "soak_source",
    "soak_days",
    "soak_requires_healthy",
    "emergency_allowed",
    "requires_validation",
    "requires_verified_artifact",
    "exclude_commit_authors",
    "retrospective_hours",
    "retrospective_excludes_authoriser",
    "conflicts_block",
    "required_acr",
    "standard_changes_allowed",
    "low_risk_approval_teams",
    "high_risk_team",
)
PREVIEW_FIELDS = (
    "approval_teams",
    "needs_change_request",
    "needs_peer_review",
    "soak_source",
    "soak_days",
    "emergency_allowed",
)
CONFIRM = "_confirm_policy"


class ReadOnlyAdmin(ServiceBackedAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PolicyInline(admin.TabularInline):
    model = EnvironmentPolicy
    fk_name = "environment"
    fields = ("version", "needs_change_request", "needs_peer_review", "soak_days", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


class RefusalsAsMessages:
    """A rule the service refuses shows as an error above the form, as on the portal's pages,
    instead of a server error; nothing was saved (the admin's transaction rolled back)."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as refusal:
            self.message_user(request, refusal.detail, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


@admin.register(Environment)
class EnvironmentAdmin(RefusalsAsMessages, ServiceBackedAdmin):
    list_display = (
        "name",
        "rank",
        "is_production",
        "admission_namespaces",
        "cluster_namespace",
        "description",
    )
    inlines = [PolicyInline]

    def get_readonly_fields(self, request, obj=None):
        return ("name",) if obj else ()

    def save_model(self, request, obj, form, change):
        if change:
            saved = services.environment_update(
                actor=request.user,
                environment=obj,
                rank=obj.rank,
                description=obj.description,
                is_production=obj.is_production,
                admission_namespaces=obj.admission_namespaces,
                cluster=services.cluster_settings_of(obj),
                request=request,
            )
        else:
            saved = services.environment_create(
                actor=request.user,
                name=obj.name,
                rank=obj.rank,
                description=obj.description,
                is_production=obj.is_production,
                admission_namespaces=obj.admission_namespaces,
                cluster=services.cluster_settings_of(obj),
                request=request,
            )
            self.message_user(
                request,
                f"{saved.name} has no policy yet: add its first version under Environment "
                "policies.",
                messages.WARNING,
            )
        obj.pk = saved.pk

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(EnvironmentPolicy)
class EnvironmentPolicyAdmin(RefusalsAsMessages, ServiceBackedAdmin):
    """Editing a version and saving writes the next version with the form's values, after a
    preview of what it would refuse and which open changes it would affect."""

    list_display = ("environment", "version", "needs_peer_review", "created_at", "created_by_name")
    list_filter = ("environment",)
    fields = ("environment", *RULE_FIELDS, "version", "created_at", "created_by_name")
    readonly_fields = ("version", "created_at", "created_by_name")
    filter_horizontal = ("approval_teams", "low_risk_approval_teams")

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "environment") if obj else self.readonly_fields

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and CONFIRM not in request.POST:
            preview = self._preview(request, object_id)
            if preview is not None:
                return preview
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _preview(self, request, object_id):
        """The preview page for a valid form, or None to let the admin show the form's errors."""
        obj = self.get_object(request, object_id) if object_id else None
        form = self.get_form(request, obj, change=obj is not None)(request.POST, instance=obj)
        if not form.is_valid():
            return None
        environment = obj.environment if obj else form.cleaned_data["environment"]
        data = form.cleaned_data
        preview = services.environment_policy_preview(
            environment=environment, **{name: data[name] for name in PREVIEW_FIELDS}
        )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Save the next {environment.name} policy?",
            "opts": self.opts,
            "environment": environment,
            "preview": preview,
            "posted": [
                (name, value)
                for name, values in request.POST.lists()
                if name != "csrfmiddlewaretoken"
                for value in values
            ],
            "confirm": CONFIRM,
            "back_url": request.get_full_path(),
        }
        return TemplateResponse(request, "admin/releases/environmentpolicy/preview.html", context)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        saved = services.environment_policy_change(
            actor=request.user,
            environment=obj.environment,
            **{name: data[name] for name in RULE_FIELDS},
            request=request,
        )
        self.message_user(request, f"Saved as {saved}; earlier versions are kept unchanged.")
        obj.pk, obj.version = saved.pk, saved.version

    def save_related(self, request, form, formsets, change):
        """The service set the approval teams on the new version; the old one stays as it was."""

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(FreezeWindow)
class FreezeWindowAdmin(ServiceBackedAdmin):
    list_display = ("environment", "starts_at", "ends_at", "reason", "cancelled_at")
    list_filter = ("environment",)
    fields = ("environment", "starts_at", "ends_at", "reason")
    actions = ["cancel"]

    def save_model(self, request, obj, form, change):
        saved = services.freeze_window_create(
            actor=request.user,
            environment=obj.environment,
            starts_at=obj.starts_at,
            ends_at=obj.ends_at,
            reason=obj.reason,
            request=request,
        )
        obj.pk = saved.pk

    def has_change_permission(self, request, obj=None):
        # A freeze is created or cancelled, never edited: the refusals it caused must stay true.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Cancel the selected freezes")
    def cancel(self, request, queryset):
        for freeze in queryset.filter(cancelled_at__isnull=True):
            services.freeze_window_cancel(
                actor=request.user,
                freeze_window=freeze,
                reason=f"Cancelled in the admin by {request.user.get_username()}",
                request=request,
            )


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(ServiceBackedAdmin):
    """Planned maintenance, shown on the change calendar; created or cancelled, never edited."""

    list_display = ("environment", "starts_at", "ends_at", "title", "cancelled_at")
    list_filter = ("environment",)
    fields = ("environment", "starts_at", "ends_at", "title")
    actions = ["cancel"]

    def save_model(self, request, obj, form, change):
        saved = calendar_services.maintenance_window_create(
            actor=request.user,
            environment=obj.environment,
            starts_at=obj.starts_at,
            ends_at=obj.ends_at,
            title=obj.title,
            request=request,
        )
        obj.pk = saved.pk

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Cancel the selected maintenance windows")
    def cancel(self, request, queryset):
        for window in queryset.filter(cancelled_at__isnull=True):
            calendar_services.maintenance_window_cancel(
                actor=request.user,
                maintenance_window=window,
                reason=f"Cancelled in the admin by {request.user.get_username()}",
                request=request,
            )


class SignOffInline(admin.TabularInline):
    model = SignOff
    fields = ("kind", "team", "signer", "decision", "meaning", "signed_at", "voided_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ChangeRequest)
class ChangeRequestAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "kind", "state", "environment", "requester", "created_at")
    list_filter = ("state", "kind", "environment")
    search_fields = ("title", "model_version__model__name")
    list_select_related = ("environment", "requester")
    inlines = [SignOffInline]


@admin.register(SignOff)
class SignOffAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "kind", "team", "decision", "signed_at", "voided_at")
    list_filter = ("kind", "decision")
    list_select_related = ("change_request", "signer", "team")
