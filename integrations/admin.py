"""The integrations in the Django admin. The change tickets' delivery log is read-only for
staff: which change is mirrored where, every transition taken from the trail and every request
made for it, with what came back; the sweep and its workers write it (integrations.tickets).
Webhook subscriptions are written through the audited services: the URL is write-only (a Teams
or Slack URL is a credential) and the signing secret appears once, in the message that follows
its making; no page shows either again."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils.html import format_html

from audit.admin import TrailNotAdminLog
from integrations import webhooks as services
from integrations.models import (
    ChangeTicket,
    TicketDeliveryAttempt,
    TicketTransition,
    WebhookEventType,
    WebhookSubscription,
)
from organisation.services import environment_names_check


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


class WebhookSubscriptionForm(forms.ModelForm):
    new_url = forms.CharField(
        label="URL",
        required=False,
        max_length=2000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="The incoming webhook's URL (https). Stored encrypted and never shown again; "
        "leave empty to keep the one stored.",
    )
    event_types = forms.MultipleChoiceField(
        choices=WebhookEventType.choices, widget=forms.CheckboxSelectMultiple
    )
    environments = forms.CharField(
        required=False,
        help_text="Comma-separated environment names, e.g. prod; empty for all.",
    )

    class Meta:
        model = WebhookSubscription
        fields = ("name", "kind", "team", "event_types", "environments", "is_active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["environments"] = ", ".join(self.instance.environments or [])
        if self.instance.pk is None:
            self.fields["new_url"].required = True

    def clean_new_url(self) -> str:
        url = self.cleaned_data["new_url"].strip()
        if not url:
            return ""
        try:
            return services.url_check(url)
        except ValidationError as error:
            raise ValidationError(error.messages) from error

    def clean_environments(self) -> list[str]:
        try:
            return environment_names_check(self.cleaned_data["environments"].split(","))
        except ValidationError as error:
            raise ValidationError(error.messages) from error


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(TrailNotAdminLog, admin.ModelAdmin):
    form = WebhookSubscriptionForm
    list_display = ("name", "kind", "url_hint", "team", "is_active", "created_at")
    list_filter = ("kind", "is_active")
    search_fields = ("name",)
    actions = ["rotate_secret", "deactivate"]

    def get_fields(self, request, obj=None):
        fields = ["name", "kind", "new_url", "team", "event_types", "environments"]
        if obj is None:
            return fields
        return [*fields, "is_active", "url_hint", "delivery_log", "secret_rotated_at", "created"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("kind", "team", "url_hint", "delivery_log", "secret_rotated_at", "created")

    @admin.display(description="Delivery log")
    def delivery_log(self, obj):
        return format_html(
            '<a href="{}">Deliveries and "Send test"</a>',
            reverse("integrations:webhook", args=[obj.pk]),
        )

    @admin.display(description="Created")
    def created(self, obj):
        return f"{obj.created_at:%Y-%m-%d %H:%M} by {obj.created_by_name}"

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            saved = services.webhook_subscription_update(
                actor=request.user,
                subscription=obj,
                name=data["name"],
                event_types=data["event_types"],
                environments=data["environments"],
                is_active=data["is_active"],
                url=data["new_url"],
                request=request,
            )
        else:
            issued = services.webhook_subscription_create(
                actor=request.user,
                name=data["name"],
                kind=data["kind"],
                url=data["new_url"],
                event_types=data["event_types"],
                environments=data["environments"],
                team=data["team"],
                request=request,
            )
            saved = issued.subscription
            if issued.secret:
                self._show_secret(request, saved, issued.secret)
        obj.pk = saved.pk

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Rotate the signing secret (shown once)")
    def rotate_secret(self, request, queryset):
        for subscription in queryset:
            try:
                secret = services.webhook_secret_rotate(
                    actor=request.user, subscription=subscription, request=request
                )
            except ValidationError as invalid:
                self.message_user(
                    request, f"{subscription.name}: {' '.join(invalid.messages)}", messages.ERROR
                )
                continue
            self._show_secret(request, subscription, secret)

    @admin.action(description="Deactivate (cancels what is pending)")
    def deactivate(self, request, queryset):
        for subscription in queryset:
            services.webhook_subscription_deactivate(
                actor=request.user, subscription=subscription, request=request
            )

    def _show_secret(self, request, subscription, secret: str) -> None:
        self.message_user(
            request,
            f"Signing secret of {subscription.name} (copy it now, it is not shown again): {secret}",
            messages.WARNING,
        )
