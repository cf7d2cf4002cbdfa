"""The Django admin for organisation data: teams, memberships, service accounts, users and
groups. Every save goes through the services, so the admin writes the same audit events as any
other path."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from audit.admin import TrailNotAdminLog
from organisation import services
from portal.exceptions import DomainError
from portal.models import Absence, Membership, ServiceAccount, ServiceToken, Team


class ServiceBackedAdmin(TrailNotAdminLog, admin.ModelAdmin):
    """Bulk deletion would skip the services; one object at a time instead."""

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "is_approver", "is_emergency_approver", "joined_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Team)
class TeamAdmin(ServiceBackedAdmin):
    list_display = ("name", "slug")
    search_fields = ("name", "slug")
    inlines = [MembershipInline]

    def get_readonly_fields(self, request, obj=None):
        return ("slug",) if obj else ()

    def save_model(self, request, obj, form, change):
        if change:
            saved = services.team_update(
                actor=request.user, team=obj, name=obj.name, description=obj.description
            )
        else:
            saved = services.team_create(
                actor=request.user, name=obj.name, slug=obj.slug, description=obj.description
            )
        obj.pk = saved.pk

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Membership)
class MembershipAdmin(ServiceBackedAdmin):
    list_display = ("user", "team", "is_approver", "is_emergency_approver")
    list_filter = ("team", "is_approver", "is_emergency_approver")
    search_fields = ("user__username", "team__name")
    autocomplete_fields = ("user", "team")

    def get_readonly_fields(self, request, obj=None):
        return ("user", "team") if obj else ()

    def save_model(self, request, obj, form, change):
        saved = services.membership_set(
            actor=request.user,
            user=obj.user,
            team=obj.team,
            is_approver=obj.is_approver,
            is_emergency_approver=obj.is_emergency_approver,
        )
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.membership_remove(actor=request.user, membership=obj)


class ServiceTokenInline(admin.TabularInline):
    model = ServiceToken
    extra = 0
    fields = ("prefix", "created_at", "revoked_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class ServiceAccountForm(forms.ModelForm):
    """Environments are typed as a comma-separated list; the service's own check of the names
    shows its message on the field."""

    environments = forms.CharField(
        required=False,
        help_text="Comma-separated names of the environments this account may deploy to, roll "
        "back in and report results for, e.g. dev, test. Empty for all.",
    )

    class Meta:
        model = ServiceAccount
        fields = ("name", "team", "scopes", "is_active", "granted_teams", "environments")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["environments"] = ", ".join(self.instance.environments or [])

    def clean_environments(self) -> list[str]:
        try:
            return services.environment_names_check(self.cleaned_data["environments"].split(","))
        except ValidationError as error:
            raise ValidationError(error.messages) from error


@admin.register(ServiceAccount)
class ServiceAccountAdmin(ServiceBackedAdmin):
    form = ServiceAccountForm
    list_display = ("name", "team", "scopes", "environments", "is_active")
    list_filter = ("team", "is_active")
    search_fields = ("name",)
    filter_horizontal = ("granted_teams",)
    inlines = [ServiceTokenInline]
    actions = ["issue_token"]

    def get_readonly_fields(self, request, obj=None):
        return ("name", "team") if obj else ()

    def save_model(self, request, obj, form, change):
        granted_teams = form.cleaned_data["granted_teams"]
        if change:
            saved = services.service_account_update(
                actor=request.user,
                service_account=obj,
                scopes=obj.scopes,
                is_active=obj.is_active,
            )
            services.service_account_grants_set(
                actor=request.user,
                service_account=saved,
                teams=granted_teams,
                environments=obj.environments,
            )
        else:
            saved, issued = services.service_account_create(
                actor=request.user,
                name=obj.name,
                team=obj.team,
                scopes=obj.scopes,
                granted_teams=granted_teams,
                environments=obj.environments,
            )
            self._show_secret(request, issued)
        obj.pk = saved.pk

    def save_related(self, request, form, formsets, change):
        """The granted teams were saved by the service in `save_model`, not by the form."""
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Issue a new token (shown once)")
    def issue_token(self, request, queryset):
        for account in queryset:
            self._show_secret(
                request, services.service_token_issue(actor=request.user, service_account=account)
            )

    def _show_secret(self, request, issued):
        self.message_user(
            request,
            f"Token for {issued.token.service_account.name} (copy it now, it is not shown again): "
            f"{issued.secret}",
            messages.WARNING,
        )


@admin.register(ServiceToken)
class ServiceTokenAdmin(ServiceBackedAdmin):
    list_display = ("service_account", "prefix", "created_at", "revoked_at")
    list_filter = ("service_account",)
    readonly_fields = ("service_account", "prefix", "created_at", "revoked_at")
    exclude = ("token_hash",)
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            services.service_token_revoke(actor=request.user, token=token)


@admin.register(Absence)
class AbsenceAdmin(ServiceBackedAdmin):
    """Absences are recorded on the My absences page, where the delegate is chosen among those
    eligible; here they are read and cancelled, through the service."""

    list_display = ("person", "team", "starts_on", "ends_on", "delegate", "cancelled_at")
    list_filter = ("team",)
    list_select_related = ("person", "team", "delegate")
    search_fields = ("person__username", "delegate__username")
    actions = ["cancel"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Cancel the selected absences")
    def cancel(self, request, queryset):
        for absence in queryset.filter(cancelled_at__isnull=True):
            try:
                services.absence_cancel(actor=request.user, absence=absence, request=request)
            except DomainError as error:
                self.message_user(request, f"{absence}: {error.detail}", messages.ERROR)


admin.site.unregister(get_user_model())
admin.site.unregister(Group)


@admin.register(get_user_model())
class AuditedUserAdmin(ServiceBackedAdmin, UserAdmin):
    """Django's user admin, writing through the user services: who may sign in, with which
    flags, groups and permissions, is recorded like any other change to who may approve."""

    readonly_fields = ("last_login", "date_joined")

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            # Groups and permissions go with the rest, so the event records the final sets.
            services.user_update(
                actor=request.user,
                user=obj,
                groups=data["groups"],
                user_permissions=data["user_permissions"],
                request=request,
                **{field: data[field] for field in services.USER_FIELDS if field in data},
            )
            return
        saved = services.user_create(
            actor=request.user,
            username=data["username"],
            password=data["password1"] if data["set_usable_password"] else None,
            request=request,
        )
        obj.pk = saved.pk

    def save_related(self, request, form, formsets, change):
        """Nothing left to save: save_model's service set the groups and permissions."""

    def delete_model(self, request, obj):
        services.user_delete(actor=request.user, user=obj, request=request)

    @method_decorator(sensitive_post_parameters())
    def user_change_password(self, request, id, form_url=""):
        """Django's view, except that a valid new password is set by `user_password_set`."""
        if request.method != "POST":
            return super().user_change_password(request, id, form_url)
        user = self.get_object(request, unquote(id))
        if user is None:
            raise Http404
        if not self.has_change_permission(request, user):
            raise PermissionDenied
        form = self.change_password_form(user, request.POST)
        if not form.is_valid() or not (
            form.cleaned_data["set_usable_password"] or "unset-password" in request.POST
        ):
            # Django's view shows the errors (or the conflicting submission) and saves nothing.
            return super().user_change_password(request, id, form_url)
        user = services.user_password_set(
            actor=request.user,
            user=user,
            password=form.cleaned_data["password1"]
            if form.cleaned_data["set_usable_password"]
            else None,
            request=request,
        )
        self.message_user(request, "The password was set.", messages.SUCCESS)
        update_session_auth_hash(request, user)
        return HttpResponseRedirect(
            reverse(
                f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change",
                args=[user.pk],
            )
        )


@admin.register(Group)
class AuditedGroupAdmin(ServiceBackedAdmin, GroupAdmin):
    """Django's group admin, writing through the group services."""

    def save_model(self, request, obj, form, change):
        name, permissions = form.cleaned_data["name"], form.cleaned_data["permissions"]
        if change:
            services.group_update(
                actor=request.user, group=obj, name=name, permissions=permissions, request=request
            )
            return
        saved = services.group_create(
            actor=request.user, name=name, permissions=permissions, request=request
        )
        obj.pk = saved.pk

    def save_related(self, request, form, formsets, change):
        """Nothing left to save: save_model's service set the permissions."""

    def delete_model(self, request, obj):
        services.group_delete(actor=request.user, group=obj, request=request)
