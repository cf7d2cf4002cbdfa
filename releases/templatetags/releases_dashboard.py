from django import template
from django.db.models import Q
from django.utils import timezone

from portal.models import Membership
from releases.selectors.dashboard import my_open_changes

register = template.Library()


@register.simple_tag(takes_context=True)
def my_changes(context) -> list | None:
    """The signed-in person's unfinished change requests, for the dashboard; None (no panel)
    for an approver with none, whose work is under Waiting for me."""
    user = getattr(context.get("request"), "user", None)
    if user is None or not user.is_authenticated:
        return None
    changes = my_open_changes(user=user, now=timezone.now())
    signer = Membership.objects.filter(
        Q(is_approver=True) | Q(is_emergency_approver=True), user_id=user.pk
    )
    if not changes and signer.exists():
        return None
    return changes
