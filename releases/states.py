"""Change request states and the moves between them: the one table the services use to refuse a
move and the templates use to choose which buttons to show."""

from django.db import models


class Kind(models.TextChoices):
    NORMAL = "normal", "Normal"
    EMERGENCY = "emergency", "Emergency"
    # Issue 18: a template approved once through the full path, and a change made under it.
    STANDARD_TEMPLATE = "standard_template", "Standard change template"
    STANDARD = "standard", "Standard"


class State(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In peer review"
    IN_APPROVAL = "in_approval", "In approval"
    APPROVED = "approved", "Approved"
    DEPLOYED = "deployed", "Deployed"
    ROLLED_BACK = "rolled_back", "Rolled back"
    CANCELLED = "cancelled", "Cancelled"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    AWAITING_AUTHORISATION = "awaiting_authorisation", "Awaiting authorisation"
    AUTHORISED = "authorised", "Authorised"
    RETRO_REVIEW = "retro_review", "In retrospective review"
    CLOSED = "closed", "Closed"


S = State
TRANSITIONS: dict[str, dict[str, frozenset[str]]] = {
    Kind.NORMAL: {
        # Straight to approved when the policy asks for neither peer review nor approval teams.
        S.DRAFT: frozenset({S.IN_REVIEW, S.IN_APPROVAL, S.APPROVED, S.CANCELLED}),
        S.IN_REVIEW: frozenset({S.IN_APPROVAL, S.APPROVED, S.REJECTED, S.CANCELLED, S.DRAFT}),
        # Back to review when the peer reviewer withdraws their sign-off.
        S.IN_APPROVAL: frozenset({S.APPROVED, S.REJECTED, S.CANCELLED, S.DRAFT, S.IN_REVIEW}),
        # Back to review or approval when a tightened policy asks for more signatures or a
        # signer withdraws theirs; cancelled when the change is no longer wanted.
        S.APPROVED: frozenset(
            {S.DEPLOYED, S.EXPIRED, S.DRAFT, S.IN_REVIEW, S.IN_APPROVAL, S.CANCELLED}
        ),
        S.DEPLOYED: frozenset({S.ROLLED_BACK}),
    },
    # A template is approved like a normal change, and never deployed: it authorises instances.
    Kind.STANDARD_TEMPLATE: {
        S.DRAFT: frozenset({S.IN_REVIEW, S.IN_APPROVAL, S.APPROVED, S.CANCELLED}),
        S.IN_REVIEW: frozenset({S.IN_APPROVAL, S.APPROVED, S.REJECTED, S.CANCELLED, S.DRAFT}),
        S.IN_APPROVAL: frozenset({S.APPROVED, S.REJECTED, S.CANCELLED, S.DRAFT, S.IN_REVIEW}),
        S.APPROVED: frozenset({S.DRAFT, S.IN_REVIEW, S.IN_APPROVAL, S.CANCELLED}),
    },
    # An instance of an approved template: the peer review only, then the gate's rules.
    Kind.STANDARD: {
        S.DRAFT: frozenset({S.IN_REVIEW, S.CANCELLED}),
        S.IN_REVIEW: frozenset({S.APPROVED, S.REJECTED, S.CANCELLED, S.DRAFT}),
        S.APPROVED: frozenset({S.DEPLOYED, S.EXPIRED, S.DRAFT, S.IN_REVIEW, S.CANCELLED}),
        S.DEPLOYED: frozenset({S.ROLLED_BACK}),
    },
    Kind.EMERGENCY: {
        S.DRAFT: frozenset({S.AWAITING_AUTHORISATION, S.CANCELLED}),
        S.AWAITING_AUTHORISATION: frozenset({S.AUTHORISED, S.REJECTED, S.CANCELLED, S.DRAFT}),
        S.AUTHORISED: frozenset({S.DEPLOYED, S.EXPIRED}),
        S.DEPLOYED: frozenset({S.RETRO_REVIEW, S.ROLLED_BACK}),
        S.RETRO_REVIEW: frozenset({S.CLOSED}),
    },
}

# States in which the content may still be edited (a submitted request returns to draft).
EDITABLE = {
    Kind.NORMAL: frozenset({S.DRAFT, S.IN_REVIEW, S.IN_APPROVAL, S.APPROVED}),
    Kind.EMERGENCY: frozenset({S.DRAFT, S.AWAITING_AUTHORISATION}),
    Kind.STANDARD_TEMPLATE: frozenset({S.DRAFT, S.IN_REVIEW, S.IN_APPROVAL, S.APPROVED}),
    Kind.STANDARD: frozenset({S.DRAFT, S.IN_REVIEW, S.APPROVED}),
}
# States that no move leaves.
FINAL = frozenset({S.ROLLED_BACK, S.CANCELLED, S.REJECTED, S.EXPIRED, S.CLOSED})


def can_move(kind: str, current: str, target: str) -> bool:
    return target in TRANSITIONS.get(kind, {}).get(current, frozenset())


def next_states(kind: str, current: str) -> frozenset[str]:
    return TRANSITIONS.get(kind, {}).get(current, frozenset())
