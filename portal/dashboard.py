"""The dashboard's panels come from the apps (which depend on `portal`; it never imports them).

Each app registers its panels from its `AppConfig.ready()`: a template and a function that
takes the signed-in person and returns the template's context, or None when the panel has
nothing for them. The dashboard shows the panels that answer, by position (lowest first, ties
in registration order), then the person's teams and roles::

    from portal.dashboard import register_dashboard_panel

    class ReleasesConfig(AppConfig):
        def ready(self):
            register_dashboard_panel(
                position=20, template="releases/change_request_waiting_panel.html",
                context=dashboard.waiting_for_me,
            )
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

PanelContext = Callable[..., dict[str, Any] | None]


@dataclass(frozen=True)
class DashboardPanel:
    position: int
    template: str
    context: PanelContext


dashboard_panels: dict[str, DashboardPanel] = {}


def register_dashboard_panel(*, position: int, template: str, context: PanelContext) -> None:
    """`context(user=...)` gives what `template` needs for that person. One panel per template:
    registering it again replaces it rather than showing it twice."""
    dashboard_panels[template] = DashboardPanel(
        position=position, template=template, context=context
    )


def dashboard_panels_for(*, user: AbstractBaseUser) -> list[tuple[str, dict[str, Any]]]:
    """(template, context) of each panel that has something for `user`, in dashboard order."""
    shown = []
    for panel in sorted(dashboard_panels.values(), key=lambda panel: panel.position):
        context = panel.context(user=user)
        if context is not None:
            shown.append((panel.template, context))
    return shown
