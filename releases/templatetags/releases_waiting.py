from django import template

from releases.selectors.change_requests import WaitingItem, change_requests_waiting_for

register = template.Library()


@register.simple_tag(takes_context=True)
def waiting_for_me(context) -> list[WaitingItem]:
    """What the signed-in person can sign now, for the dashboard panel."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    return change_requests_waiting_for(user=user)
