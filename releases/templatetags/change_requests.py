"""How a change request's state shows on every page that lists or heads one."""

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from releases.states import Kind, State

register = template.Library()

GOOD = frozenset({State.APPROVED, State.DEPLOYED, State.CLOSED, State.AUTHORISED})
ENDED_BADLY = frozenset({State.REJECTED, State.CANCELLED, State.EXPIRED, State.ROLLED_BACK})


@register.filter
def state_badge(change_request) -> SafeString:
    """`{{ cr|state_badge }}`: the state as a coloured badge, and an emergency's own badge. A
    filter rather than an included template: list pages render it on every row."""
    state = change_request.state
    tone = (
        " ok"
        if state in GOOD
        else " bad"
        if state in ENDED_BADLY
        else ""
        if state == State.DRAFT
        else " warn"
    )
    badge = format_html('<span class="badge{}">{}</span>', tone, change_request.get_state_display())
    if change_request.kind == Kind.EMERGENCY:
        return format_html('{} <span class="badge bad">Emergency</span>', badge)
    return badge


@register.filter
def window(change_request) -> SafeString:
    """`{{ cr|window }}`: "2026-12-02 09:00 to 2026-12-02 13:00 UTC", in the display zone, as
    `|date:"Y-m-d H:i"` wrote it at a fraction of its cost on list rows."""
    if change_request.window_start is None:
        return format_html('<span class="muted">{}</span>', "none")
    start = timezone.localtime(change_request.window_start)
    end = timezone.localtime(change_request.window_end)
    return format_html(
        "{} to {} {}",
        start.strftime("%Y-%m-%d %H:%M"),
        end.strftime("%Y-%m-%d %H:%M"),
        end.tzname(),
    )
