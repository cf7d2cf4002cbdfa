from django import template
from django.utils import timezone

from releases.selectors.dashboard import my_open_changes

register = template.Library()


@register.simple_tag(takes_context=True)
def my_changes(context) -> list:
    """The signed-in person's unfinished change requests, for the dashboard."""
    user = getattr(context.get("request"), "user", None)
    if user is None or not user.is_authenticated:
        return []
    return my_open_changes(user=user, now=timezone.now())
