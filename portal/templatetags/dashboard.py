"""Renders the panels the apps registered for the dashboard (`portal/dashboard.py`)."""

from typing import Any

from django import template
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag(takes_context=True)
def dashboard_panel(context, template_name: str, panel_context: dict[str, Any]) -> SafeString:
    """What `{% include %}` does for a template named at run time, with the panel's own
    context on top of the page's."""
    panel = context.template.engine.get_template(template_name)
    with context.push(panel_context):
        return panel.render(context)
