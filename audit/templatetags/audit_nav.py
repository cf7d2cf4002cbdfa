from django import template
from django.urls import reverse
from django.utils.html import format_html

from audit.selectors import can_read_audit

register = template.Library()


@register.simple_tag(takes_context=True)
def audit_nav_link(context) -> str:
    """The navigation link to the audit trail, for those who may read it."""
    request = context.get("request")
    if not can_read_audit(getattr(request, "user", None)):
        return ""
    return format_html('<a href="{}">Audit trail</a>', reverse("audit:events"))
