"""Who may do what to a change request or a deployment: pure functions over loaded rows, asked by
the services (which refuse) and by the selectors, views and templates (which choose the
buttons), so a page can never offer what the service refuses. Rules 2, 3, 4, 6 and 10 of
DESIGN.md."""

from collections.abc import Iterable
from dataclasses import dataclass

from portal.exceptions import DomainError, RuleDenied
from portal.models import Membership, Team
from releases.models import ChangeRequest, Decision, SignOff, SignOffKind
from releases.states import State

# The only states in which a signature is asked for, and which kind of signature that is.
SIGN_OFF_KIND_BY_STATE = {
    State.IN_REVIEW: SignOffKind.PEER_REVIEW,
    State.IN_APPROVAL: SignOffKind.APPROVAL,
    State.AWAITING_AUTHORISATION: SignOffKind.EMERGENCY_AUTHORISATION,
    State.RETRO_REVIEW: SignOffKind.RETROSPECTIVE,
}


@dataclass(frozen=True)
class Slot:
    """A signature the request still waits for. `team` is None for an emergency
    authorisation, which any emergency approver may give."""

    kind: str
    team: Team | None

    @property
    def label(self) -> str:
        if self.kind == SignOffKind.PEER_REVIEW:
            return f"Peer review ({self.team.name})"
        if self.kind == SignOffKind.EMERGENCY_AUTHORISATION:
            return "Emergency authorisation"
        if self.kind == SignOffKind.RETROSPECTIVE:
            return f"Retrospective ({self.team.name})"
        return self.team.name


def open_slots(
    change_request: ChangeRequest, approval_teams: Iterable[Team], sign_offs: Iterable[SignOff]
) -> list[Slot]:
    """The signatures still missing in the request's current state, in policy order."""
    kind = SIGN_OFF_KIND_BY_STATE.get(change_request.state)
    if kind is None:
        return []
    given = [s for s in sign_offs if s.voided_at is None and s.kind == kind]
    if kind == SignOffKind.PEER_REVIEW:
        return [] if given else [Slot(kind, change_request.team)]
    if kind == SignOffKind.EMERGENCY_AUTHORISATION:
        return [] if given else [Slot(kind, None)]
    signed_team_ids = {s.team_id for s in given}
    return [Slot(kind, team) for team in approval_teams if team.pk not in signed_team_ids]


def signer_denial(
    *,
    user,
    change_request: ChangeRequest,
    slot: Slot,
    memberships: Iterable[Membership],
    sign_offs: Iterable[SignOff],
    commit_author_emails: set[str] | None = None,
) -> DomainError | None:
    """Why `user` may not fill `slot` now, or None. `memberships` are the user's current ones:
    roles count at the moment of signing. `commit_author_emails` is given only when the policy
    excludes commit authors."""
    if user.pk == change_request.requester_id:
        return RuleDenied(
            f"{change_request.number} is your own change; someone else must sign it.",
            code="own_change",
        )
    retrospective = slot.kind == SignOffKind.RETROSPECTIVE
    for sign_off in sign_offs:
        same_round = (sign_off.kind == SignOffKind.RETROSPECTIVE) == retrospective
        if sign_off.voided_at is None and sign_off.signer_id == user.pk and same_round:
            return RuleDenied(
                f"You already signed {change_request.number} "
                f"({sign_off.get_kind_display().lower()}); one sign-off per person.",
                code="already_signed",
            )
    memberships = list(memberships)
    if slot.kind == SignOffKind.PEER_REVIEW:
        if not any(m.team_id == change_request.team_id for m in memberships):
            return RuleDenied(
                f"A peer review must come from a member of {change_request.team.name}.",
                code="not_a_peer",
            )
    elif slot.kind == SignOffKind.EMERGENCY_AUTHORISATION:
        if not any(m.is_emergency_approver for m in memberships):
            return RuleDenied(
                "Only an emergency approver may authorise an emergency change.",
                code="not_an_emergency_approver",
            )
    elif not any(m.team_id == slot.team.pk and m.is_approver for m in memberships):
        return RuleDenied(
            f"You do not hold the approver role in {slot.team.name}.", code="not_an_approver"
        )
    email = (getattr(user, "email", "") or "").strip().lower()
    if commit_author_emails is not None and email and email in commit_author_emails:
        return RuleDenied(
            "You authored a commit in this release; the policy excludes commit authors.",
            code="commit_author",
        )
    return None


def signature_meaning(*, change_request: ChangeRequest, slot: Slot, decision: str) -> str:
    """The sentence the signer sees before signing and that is stored with the signature."""
    number, environment = change_request.number, change_request.environment.name
    approve = decision == Decision.APPROVE
    if slot.kind == SignOffKind.PEER_REVIEW:
        verb = "approve" if approve else "reject"
        return f"I {verb} {number} for {environment} as peer reviewer for {slot.team.name}"
    if slot.kind == SignOffKind.EMERGENCY_AUTHORISATION:
        verb = "authorise" if approve else "refuse"
        return f"I {verb} emergency change {number} for {environment} as emergency approver"
    if slot.kind == SignOffKind.RETROSPECTIVE:
        verdict = "accept" if approve else "do not accept"
        return (
            f"I reviewed emergency change {number} for {environment} after the fact and "
            f"{verdict} it on behalf of {slot.team.name}"
        )
    verb = "approve" if approve else "reject"
    return f"I {verb} {number} for {environment} on behalf of {slot.team.name}"
