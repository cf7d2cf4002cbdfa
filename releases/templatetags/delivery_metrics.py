"""How the delivery metrics read on the page: a measure without data says so, never zero."""

from datetime import timedelta

from django import template

from releases.charts import format_duration

register = template.Library()

NO_DATA = "no data"


@register.filter
def duration(value: timedelta | None) -> str:
    return format_duration(value)


@register.filter
def percent(value: float | None) -> str:
    return NO_DATA if value is None else f"{value * 100:.0f}%"


@register.filter
def per_week(value: float | None) -> str:
    return NO_DATA if value is None else f"{value:.1f} per week"
