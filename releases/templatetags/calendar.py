"""How a calendar entry reads on one day of the calendar: its hours that day."""

from datetime import date, datetime, timedelta

from django import template
from django.utils import timezone

register = template.Library()


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


@register.filter
def hours_on(entry, day: date) -> str:
    """`{{ entry|hours_on:day }}`: "09:00-13:00", "from 22:00", "until 02:00" or "all day", in
    the display time zone."""
    start, end = _midnight(day), _midnight(day + timedelta(days=1))
    begins = timezone.localtime(entry.starts_at)
    ends = timezone.localtime(entry.ends_at)
    if entry.starts_at <= start and entry.ends_at >= end:
        return "all day"
    if entry.starts_at >= start and entry.ends_at <= end:
        if entry.ends_at - entry.starts_at <= timedelta(minutes=1):
            return begins.strftime("%H:%M")
        return f"{begins:%H:%M}-{ends:%H:%M}"
    if entry.starts_at >= start:
        return f"from {begins:%H:%M}"
    return f"until {ends:%H:%M}"
