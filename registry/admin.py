"""The registry in the Django admin. Versions and dataset versions are evidence: read-only here,
as everywhere. Models are added through the registration service; a repository's mirror and
GitLab project are set by an administrator through `repository_configure`, which audits it."""

from django.contrib import admin
from django.db import models

from audit.admin import TrailNotAdminLog
from registry import services
from registry.models import DatasetVersion, ModelVersion, RegisteredModel, Repository

URL_FIELDS = {models.URLField: {"assume_scheme": "https"}}


class ReadOnlyAdmin(TrailNotAdminLog, admin.ModelAdmin):
    formfield_overrides = URL_FIELDS

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Repository)
class RepositoryAdmin(TrailNotAdminLog, admin.ModelAdmin):
    list_display = ("url", "mirror_path", "gitlab_url", "gitlab_project_id", "created_at")
    search_fields = ("url",)
    fields = ("url", "mirror_path", "gitlab_url", "gitlab_project_id")
    formfield_overrides = URL_FIELDS

    def get_readonly_fields(self, request, obj=None):
        return ("url",) if obj else ()

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def save_model(self, request, obj, form, change):
        repository = obj
        if not change:
            repository, _ = services.repository_register(
                actor=request.user, url=obj.url, request=request
            )
        saved = services.repository_configure(
            actor=request.user,
            repository=repository,
            mirror_path=obj.mirror_path,
            gitlab_url=obj.gitlab_url,
            gitlab_project_id=obj.gitlab_project_id,
            request=request,
        )
        obj.pk = saved.pk

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RegisteredModel)
class RegisteredModelAdmin(TrailNotAdminLog, admin.ModelAdmin):
    list_display = ("name", "owner_team", "risk_tier", "created_at")
    list_filter = ("owner_team", "risk_tier")
    search_fields = ("name", "description")
    fields = ("name", "owner_team", "description", "risk_tier")

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def save_model(self, request, obj, form, change):
        saved, _ = services.model_register(
            actor=request.user,
            name=obj.name,
            owner_team=obj.owner_team.slug,
            description=obj.description,
            risk_tier=obj.risk_tier,
            request=request,
        )
        obj.pk = saved.pk

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DatasetVersion)
class DatasetVersionAdmin(ReadOnlyAdmin):
    list_display = ("name", "version", "sha256", "rows", "created_at")
    search_fields = ("name",)


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ("model", "version", "commit_sha", "build_id", "artifact_sha256", "created_at")
    list_filter = ("model",)
    search_fields = ("model__name", "version", "commit_sha", "artifact_sha256")
    list_select_related = ("model",)
