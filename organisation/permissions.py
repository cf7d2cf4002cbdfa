"""Who may record or cancel whose absence. The person themselves; for anyone, a change manager
(an emergency approver, who keeps the change calendar) or an administrator, so that a sudden
absence does not wait for its own author."""

from typing import Any

from portal.authentication import is_service_account
from portal.exceptions import DomainError, RuleDenied
from portal.models import Membership


def keeps_absences(actor: Any) -> bool:
    """A change manager or an administrator, who records and cancels absences for anyone."""
    if actor is None or is_service_account(actor) or not actor.is_authenticated:
        return False
    change_manager = Membership.objects.filter(user=actor, is_emergency_approver=True)
    return actor.is_staff or change_manager.exists()


def absence_denial(actor: Any, person) -> DomainError | None:
    """Why `actor` may not record or cancel an absence of `person`, or None. None as actor is
    the system (the demo)."""
    if actor is None:
        return None
    if is_service_account(actor) or not actor.is_authenticated:
        return RuleDenied(
            "Absences are recorded by people, who answer for them.", code="people_only"
        )
    if actor.pk == person.pk or keeps_absences(actor):
        return None
    return RuleDenied(
        "Only the person away, a change manager or an administrator records or cancels an absence.",
        code="not_allowed_to_record_absence",
    )
