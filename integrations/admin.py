"""The change tickets' delivery log, read-only for staff: which change is mirrored where, every
transition taken from the trail and every request made for it, with what came back. Nothing here
is edited by hand: the sweep and its workers write it (integrations.tickets)."""

import json

from django.contrib import admin
from django.db import models

from audit.admin import TrailNotAdminLog
from integrations.models import ChangeTicket, TicketDeliveryAttempt, TicketTransition


class ReadOnly:
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class TransitionInline(ReadOnly, admin.TabularInline):
    model = TicketTransition
    fields = ("event", "kind", "summary", "attempts", "next_attempt_at", "delivered_at")
    readonly_fields = fields
    extra = 0
    show_change_link = True


class DeliveryAttemptInline(ReadOnly, admin.TabularInline):
    model = TicketDeliveryAttempt
    fields = ("attempt", "at", "method", "path", "status", "ok", "detail", "duration_ms")
    readonly_fields = fields
    extra = 0


@admin.register(ChangeTicket)
class ChangeTicketAdmin(ReadOnly, TrailNotAdminLog, admin.ModelAdmin):
    list_display = ("change_request", "system", "reference", "linked_at", "synced_at")
    list_filter = ("system",)
    search_fields = ("reference", "external_id")
    list_select_related = ("change_request",)
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    inlines = [TransitionInline]

    def get_actions(self, request):
        return {}


@admin.register(TicketTransition)
class TicketTransitionAdmin(ReadOnly, TrailNotAdminLog, admin.ModelAdmin):
    list_display = (
        "__str__",
        "kind",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "last_error",
    )
    list_filter = ("kind", "ticket__system", ("delivered_at", admin.EmptyFieldListFilter))
    list_select_related = ("ticket__change_request",)
    exclude = ("change",)
    readonly_fields = ("change_as_sent",)
    inlines = [DeliveryAttemptInline]

    def get_actions(self, request):
        return {}

    @admin.display(description="Change as sent")
    def change_as_sent(self, transition: TicketTransition) -> str:
        return json.dumps(transition.change, indent=2, ensure_ascii=False)
