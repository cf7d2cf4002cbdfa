"""The admins other apps register, made to write through audited services: beat's schedules
(pausing the chain's verification or an escalation is a change like any other) and django-axes'
sign-in records (evidence: read-only; clearing a lockout is audited)."""

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from audit.admin import TrailNotAdminLog
from organisation import services
from portal import schedules


class AuditedScheduleAdmin(TrailNotAdminLog):
    """One object at a time through the schedule services. Beat's bulk enable, disable and
    toggle update rows behind the services' back, so only "run now" stays: it changes nothing,
    and what the jobs do is audited by the jobs."""

    def get_actions(self, request):
        actions = super().get_actions(request)
        return {name: action for name, action in actions.items() if name == "run_tasks"}

    def save_model(self, request, obj, form, change):
        schedules.schedule_save(actor=request.user, schedule=obj, request=request)

    def delete_model(self, request, obj):
        schedules.schedule_delete(actor=request.user, schedule=obj, request=request)


BEAT_ADMINS = {
    PeriodicTask: beat_admin.PeriodicTaskAdmin,
    IntervalSchedule: beat_admin.IntervalScheduleAdmin,
    CrontabSchedule: beat_admin.CrontabScheduleAdmin,
    SolarSchedule: beat_admin.SolarScheduleAdmin,
    ClockedSchedule: beat_admin.ClockedScheduleAdmin,
}
for model, beat_model_admin in BEAT_ADMINS.items():
    admin.site.unregister(model)
    admin.site.register(
        model, type(beat_model_admin.__name__, (AuditedScheduleAdmin, beat_model_admin), {})
    )


class SignInRecordAdmin(TrailNotAdminLog):
    """Who signed in, failed or was locked out, and from where: read-only evidence."""

    def get_actions(self, request):
        return {}

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.unregister(AccessLog)
admin.site.unregister(AccessFailureLog)
admin.site.unregister(AccessAttempt)


@admin.register(AccessLog)
class AuditedAccessLogAdmin(SignInRecordAdmin, AccessLogAdmin):
    pass


@admin.register(AccessFailureLog)
class AuditedAccessFailureLogAdmin(SignInRecordAdmin, AccessFailureLogAdmin):
    pass


@admin.register(AccessAttempt)
class AuditedAccessAttemptAdmin(TrailNotAdminLog, AccessAttemptAdmin):
    """Deleting an attempt lifts the lockout it caused: allowed, one at a time, and audited."""

    def get_actions(self, request):
        return {}

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        services.user_lockout_clear(actor=request.user, attempt=obj, request=request)
