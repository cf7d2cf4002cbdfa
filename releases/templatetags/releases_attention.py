from dataclasses import dataclass

from django import template

from releases.models import UnauthorisedChange
from releases.selectors.change_requests import EmergencyRow, emergency_overview

register = template.Library()


@dataclass(frozen=True)
class Attention:
    emergencies: list[EmergencyRow]
    unauthorised: list[UnauthorisedChange]

    def __bool__(self) -> bool:
        return bool(self.emergencies or self.unauthorised)


@register.simple_tag
def needs_attention() -> Attention:
    """What everyone should see on the dashboard: emergency changes still owing retrospective
    reviews (overdue ones first, rule 11) and unreviewed unauthorised changes (rule 14)."""
    emergencies = [row for row in emergency_overview() if row.owed]
    unauthorised = list(
        UnauthorisedChange.objects.filter(reviewed_at__isnull=True).select_related(
            "environment", "model", "deployment__model_version"
        )[:20]
    )
    return Attention(emergencies=emergencies, unauthorised=unauthorised)
