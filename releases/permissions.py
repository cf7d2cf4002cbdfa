"""Who may do what in releases: one home, asked by the services (which refuse) and by the
selectors and views (which choose the buttons), so a page never offers what the service refuses.
Rules 2, 3, 4, 6, 10, 14 and 15 of DESIGN.md, and delegation during an absence (issue 17).

`denial(user, action, obj)` says why not, as the domain error the service raises (a stable code);
`may` is its yes or no. The sign-off rules take the loaded rows they judge (`signer_denial`,
and `delegate_denial` for a delegate signing for an absent approver); the rest read at most the
environment's policy."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from portal.authentication import is_service_account
from portal.exceptions import Conflict, DomainError, RuleDenied
from portal.models import Absence, Membership, Scope, Team
from registry.models import RegisteredModel
from registry.permissions import token_team_denial
from releases.models import (
    ChangeRequest,
    Decision,
    Deployment,
    DeploymentStatus,
    Environment,
    SignOff,
    SignOffKind,
    StandardChangeTemplate,
    UnauthorisedChange,
)
from releases.selectors.policy import environment_policy_current
from releases.states import EDITABLE, FINAL, State, can_move


class Action(StrEnum):
    """What a person or a pipeline asks to do; each has a button somewhere."""

    EDIT = "edit"
    SUBMIT = "submit"
    CANCEL = "cancel"
    WITHDRAW_SIGN_OFF = "withdraw_sign_off"
    ROLL_BACK = "roll_back"
    REPORT_RESULT = "report_result"
    REVIEW_UNAUTHORISED_CHANGE = "review_unauthorised_change"
    MANAGE_CALENDAR_FEED = "manage_calendar_feed"
    REVOKE_STANDARD_TEMPLATE = "revoke_standard_template"


# The only states in which a signature is asked for, and which kind of signature that is.
SIGN_OFF_KIND_BY_STATE = {
    State.IN_REVIEW: SignOffKind.PEER_REVIEW,
    State.IN_APPROVAL: SignOffKind.APPROVAL,
    State.AWAITING_AUTHORISATION: SignOffKind.EMERGENCY_AUTHORISATION,
    State.RETRO_REVIEW: SignOffKind.RETROSPECTIVE,
}
# The sign-offs a signer may take back before the change is deployed. An emergency
# authorisation has let the change through at once, and a retrospective comes after the fact.
WITHDRAWABLE_KINDS = frozenset({SignOffKind.PEER_REVIEW, SignOffKind.APPROVAL})


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
    authoriser_excluded: bool = True,
) -> DomainError | None:
    """Why `user` may not fill `slot` now, or None. `memberships` are the user's current ones:
    roles count at the moment of signing. `commit_author_emails` is given only when the policy
    excludes commit authors; `authoriser_excluded` keeps an emergency's authoriser out of its
    retrospective (rule 11: the review is independent of whoever let the change through)."""
    if user.pk == change_request.requester_id:
        return RuleDenied(
            f"{change_request.number} is your own change, and nobody signs their own: someone "
            "else signs it (the change's page says whom it waits for).",
            code="own_change",
        )
    sign_offs = list(sign_offs)
    retrospective = slot.kind == SignOffKind.RETROSPECTIVE
    given = _signed_by(sign_offs, user.pk, retrospective=retrospective)
    if given is not None:
        through = "" if given.signer_id == user.pk else ", through your delegate"
        return RuleDenied(
            f"You already signed {change_request.number} "
            f"({given.get_kind_display().lower()}{through}); one sign-off per person, so "
            "another person gives this one.",
            code="already_signed",
        )
    for sign_off in sign_offs:
        authorised = (
            sign_off.kind == SignOffKind.EMERGENCY_AUTHORISATION
            and sign_off.decision == Decision.APPROVE
            and sign_off.voided_at is None
            and sign_off.signer_id == user.pk
        )
        if retrospective and authoriser_excluded and authorised:
            return RuleDenied(
                f"You authorised emergency change {change_request.number}; its retrospective "
                "review must come from someone else: ask another approver of the team.",
                code="authoriser_reviews",
            )
    memberships = list(memberships)
    if slot.kind == SignOffKind.PEER_REVIEW:
        if not any(m.team_id == change_request.team_id for m in memberships):
            return RuleDenied(
                f"A peer review must come from a member of {change_request.team.name}: ask a "
                "colleague there to review it.",
                code="not_a_peer",
            )
    elif slot.kind == SignOffKind.EMERGENCY_AUTHORISATION:
        if not any(m.is_emergency_approver for m in memberships):
            return RuleDenied(
                "Only an emergency approver may authorise an emergency change: ask the change "
                "manager on duty. An administrator grants the role in Admin → Memberships.",
                code="not_an_emergency_approver",
            )
    elif not any(m.team_id == slot.team.pk and m.is_approver for m in memberships):
        return RuleDenied(
            f"You do not hold the approver role in {slot.team.name}, so you cannot sign for it. "
            f"Ask another approver of {slot.team.name}; an administrator grants the role in "
            "Admin → Memberships.",
            code="not_an_approver",
        )
    email = (getattr(user, "email", "") or "").strip().lower()
    if commit_author_emails is not None and email and email in commit_author_emails:
        return RuleDenied(
            "You authored a commit in this release and the policy excludes commit authors: "
            "ask another approver of the team to sign.",
            code="commit_author",
        )
    return None


def _signed_by(sign_offs: Iterable[SignOff], person_id: int, *, retrospective: bool):
    """The standing sign-off that `person_id` gave in this round (retrospectives count apart),
    themself or through their delegate: one sign-off per person counts both."""
    for sign_off in sign_offs:
        same_round = (sign_off.kind == SignOffKind.RETROSPECTIVE) == retrospective
        signed = person_id in (sign_off.signer_id, sign_off.on_behalf_of_id)
        if sign_off.voided_at is None and same_round and signed:
            return sign_off
    return None


def full_name(user) -> str:
    return user.get_full_name() or user.get_username()


def delegate_denial(
    *,
    user,
    principal,
    change_request: ChangeRequest,
    slot: Slot,
    memberships: Iterable[Membership],
    principal_memberships: Iterable[Membership],
    sign_offs: Iterable[SignOff],
    absences: Iterable[Absence],
    today: date,
    commit_author_emails: set[str] | None = None,
) -> DomainError | None:
    """Why `user` may not fill `slot` now as the delegate of the absent `principal`, or None.

    A delegation lends the principal's place and nothing more: a team approval only, for the
    team and the days of an absence of the principal that names `user` (`today` in the portal's
    time zone), and only when both could sign it. Rule 4 binds both people: neither is the
    requester, neither signed this change already (themself or through a delegate), both hold
    the approver role in that team now (a demoted principal's delegation is void), and neither
    authored a commit where the policy excludes authors. A delegate who is away does not hand
    the place on. `memberships` are the delegate's, `absences` those of the two, as read now."""
    sign_offs, absences = list(sign_offs), list(absences)
    name = full_name(principal)
    if slot.kind != SignOffKind.APPROVAL:
        return RuleDenied(
            "A delegate gives team approvals only; a peer review, an emergency authorisation or "
            "a retrospective is signed in one's own name: sign it as yourself, if you may.",
            code="delegation_not_for_kind",
        )
    named = [
        absence
        for absence in absences
        if absence.person_id == principal.pk
        and absence.team_id == slot.team.pk
        and absence.delegate_id == user.pk
        and absence.cancelled_at is None
    ]
    if not named:
        return RuleDenied(
            f"{name} has not named you their delegate in {slot.team.name}. They name one under "
            f"My absences; meanwhile ask another approver of {slot.team.name}.",
            code="not_a_delegate",
        )
    if not any(absence.covers(today) for absence in named):
        spans = ", ".join(f"{a.starts_on:%Y-%m-%d} to {a.ends_on:%Y-%m-%d}" for a in named)
        return RuleDenied(
            f"You stand in for {name} only while they are away ({spans}), not on "
            f"{today:%Y-%m-%d}. They sign themselves, or extend their absence under My "
            "absences.",
            code="delegation_not_current",
        )
    if any(absence.person_id == user.pk and absence.covers(today) for absence in absences):
        return RuleDenied(
            "You are recorded away yourself today; a delegate does not hand on what they were "
            "given. End your absence under My absences, or ask another approver.",
            code="delegate_absent",
        )
    denial = signer_denial(
        user=user,
        change_request=change_request,
        slot=slot,
        memberships=memberships,
        sign_offs=sign_offs,
        commit_author_emails=commit_author_emails,
    )
    if denial is not None:
        return denial
    return _principal_denial(
        principal=principal,
        change_request=change_request,
        slot=slot,
        memberships=principal_memberships,
        sign_offs=sign_offs,
        commit_author_emails=commit_author_emails,
    )


def _principal_denial(
    *,
    principal,
    change_request: ChangeRequest,
    slot: Slot,
    memberships: Iterable[Membership],
    sign_offs: list[SignOff],
    commit_author_emails: set[str] | None,
) -> DomainError | None:
    """The signer's rules, asked of the absent principal whose place the delegate takes."""
    number, name = change_request.number, full_name(principal)
    if principal.pk == change_request.requester_id:
        return RuleDenied(
            f"{number} is {name}'s own change; nobody signs it on their behalf. Another "
            "approver of the team signs it.",
            code="principal_own_change",
        )
    if _signed_by(sign_offs, principal.pk, retrospective=False) is not None:
        return RuleDenied(
            f"{name} already signed {number}; one sign-off per person, a delegate's included. "
            "Nothing more is needed from you for them.",
            code="principal_already_signed",
        )
    approver = any(m.team_id == slot.team.pk and m.is_approver for m in memberships)
    if not (principal.is_active and approver):
        return RuleDenied(
            f"{name} no longer holds the approver role in {slot.team.name}: their delegation "
            f"is void. Ask another approver of {slot.team.name}.",
            code="principal_not_an_approver",
        )
    email = (getattr(principal, "email", "") or "").strip().lower()
    if commit_author_emails is not None and email and email in commit_author_emails:
        return RuleDenied(
            f"{name} authored a commit in this release; the policy excludes commit authors, "
            f"and their delegate with them. Ask another approver of {slot.team.name}.",
            code="principal_commit_author",
        )
    return None


def signature_meaning(
    *, change_request: ChangeRequest, slot: Slot, decision: str, principal=None
) -> str:
    """The sentence the signer sees before signing and that is stored with the signature; a
    delegate's names the absent approver they sign for."""
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
    meaning = f"I {verb} {number} for {environment} on behalf of {slot.team.name}"
    if principal is not None:
        meaning += f", as delegate of {full_name(principal)}"
    return meaning


def person_denial(user: Any) -> DomainError | None:
    """Rule 2: people file and sign, and answer for it; a token or the system does not."""
    if user is None or is_service_account(user) or not user.is_authenticated:
        return RuleDenied(
            "Change requests are filed and signed by people, who answer for them: sign in "
            "to the portal as yourself. A pipeline's token asks the gate and reports "
            "deployments.",
            code="people_only",
        )
    return None


def _requester_denial(user, change_request: ChangeRequest) -> DomainError | None:
    """Rule 2: the requester answers for their change, so only they edit or submit it."""
    denial = person_denial(user)
    if denial is None and user.pk != change_request.requester_id:
        denial = RuleDenied(
            f"Only the requester of {change_request.number}, "
            f"{full_name(change_request.requester)}, may do this: ask them, or file a change "
            "of your own.",
            code="not_the_requester",
        )
    return denial


def is_change_manager(user: Any) -> bool:
    """Change managers are the emergency approvers (README, who uses it)."""
    if person_denial(user) is not None:
        return False
    return Membership.objects.filter(user=user, is_emergency_approver=True).exists()


def _canceller_denial(user, change_request: ChangeRequest) -> DomainError | None:
    """The requester, or a change manager (who keeps the change calendar), cancels a change."""
    denial = person_denial(user)
    if denial is None and user.pk != change_request.requester_id and not is_change_manager(user):
        denial = RuleDenied(
            f"Only the requester of {change_request.number}, "
            f"{full_name(change_request.requester)}, or a change manager may cancel it: ask "
            "one of them.",
            code="not_allowed_to_cancel",
        )
    return denial


def _deployment_running_denial(change_request: ChangeRequest) -> DomainError | None:
    """A deployment under way went through the gate with the change as it stands: its result
    must find the change still approved, or what went live would be recorded nowhere."""
    running = Deployment.objects.filter(
        change_request=change_request, status=DeploymentStatus.STARTED
    ).exists()
    if running:
        return Conflict(
            f"A deployment under {change_request.number} has not reported its result yet; "
            "wait for its pipeline to report success or failure, then try again.",
            code="deployment_in_progress",
        )
    return None


def _withdrawal_denial(user, sign_off: SignOff) -> DomainError | None:
    """Changing your mind: only the signer takes back their own peer review or approval, and
    only while the change is still on its way to deployment."""
    change_request = sign_off.change_request
    number, state = change_request.number, change_request.get_state_display().lower()
    denial = person_denial(user)
    if denial is not None:
        return denial
    if user.pk != sign_off.signer_id:
        return RuleDenied(
            f"Only the person who signed may withdraw this sign-off on {number}, "
            f"{full_name(sign_off.signer)}: ask them.",
            code="not_the_signer",
        )
    if sign_off.kind not in WITHDRAWABLE_KINDS:
        return RuleDenied(
            "A peer review or a team approval may be withdrawn; an emergency authorisation or "
            "a retrospective review may not. If the change should not go ahead, its "
            "requester or a change manager cancels it.",
            code="not_withdrawable",
        )
    if sign_off.voided_at is not None:
        return Conflict(
            f"This sign-off on {number} is void already ({sign_off.voided_reason}); there is "
            "nothing to withdraw.",
            code="sign_off_void",
        )
    if change_request.state in (State.DEPLOYED, State.ROLLED_BACK):
        return Conflict(
            f"{number} is {state}: a sign-off is withdrawn only before the change is deployed. "
            "If it misbehaves, roll it back.",
            code="already_deployed",
        )
    if change_request.state in FINAL:
        return Conflict(
            f"{number} is {state}: nothing waits on its sign-offs any more, so there is "
            "nothing to withdraw.",
            code="change_closed",
        )
    return _deployment_running_denial(change_request)


def _state_denial(action: Action, change_request: ChangeRequest) -> DomainError | None:
    """Which states each move of the requester leaves (states.py holds the table)."""
    number, state = change_request.number, change_request.get_state_display().lower()
    if action == Action.EDIT and change_request.state not in EDITABLE[change_request.kind]:
        return Conflict(
            f"{number} is {state} and can no longer be edited. {_past_editing(change_request)}",
            code="invalid_transition",
        )
    if action == Action.SUBMIT and change_request.state != State.DRAFT:
        return Conflict(
            f"{number} is {state}; only a draft is submitted. {_past_editing(change_request)}",
            code="invalid_transition",
        )
    if action == Action.CANCEL and not can_move(
        change_request.kind, change_request.state, State.CANCELLED
    ):
        return Conflict(
            f"{number} is {state}; it cannot become cancelled. {_past_editing(change_request)}",
            code="invalid_transition",
        )
    return None


def _past_editing(change_request: ChangeRequest) -> str:
    """The next step for a requester whose change has moved past what they asked to do."""
    if change_request.state in FINAL:
        return "To change anything, file a new change request."
    if change_request.state in (State.DEPLOYED, State.RETRO_REVIEW):
        return "It has been deployed: roll it back if it misbehaves, or file a new change."
    if change_request.state == State.AUTHORISED:
        return "Its authorisation runs out 24 hours after it was given; then file a new one."
    return "It is on its way already: its page says whom it waits for."


def is_environment_approver(user: Any, environment: Environment) -> bool:
    """An approver of one of the approval teams of the environment's current policy."""
    if user is None or is_service_account(user) or not user.is_authenticated:
        return False
    policy = environment_policy_current(environment=environment)
    if policy is None:
        return False
    return Membership.objects.filter(
        user=user, is_approver=True, team__in=policy.approval_teams.all()
    ).exists()


def may_roll_back(*, actor: Any, replaced: Deployment, environment_approver: bool) -> bool:
    """Rule 10: the change's owner (its requester, or whoever started the deployment), an
    approver of one of the environment's approval teams, or a token with `deployments:write`.
    Pages pass `environment_approver` once for all their rows."""
    if actor is None:
        return True
    if is_service_account(actor):
        return actor.has_scope(Scope.DEPLOYMENTS_WRITE)
    if not actor.is_authenticated:
        return False
    owners = {replaced.started_by_user_id}
    if replaced.change_request is not None:
        owners.add(replaced.change_request.requester_id)
    return actor.pk in owners or environment_approver


def token_environment_denial(actor: Any, environment: Environment) -> DomainError | None:
    """Rule 15: a token limited to named environments deploys, rolls back and reports results
    there only."""
    if not is_service_account(actor) or actor.acts_in_environment(environment.name):
        return None
    return RuleDenied(
        f"The token of '{actor.name}' is limited to {', '.join(actor.environments)}; it may not "
        f"act in {environment.name}. Use a token for {environment.name}, or ask an "
        "administrator to extend this one's environments in Admin → Service accounts.",
        code="token_wrong_environment",
    )


def token_reach_denial(
    actor: Any, *, model: RegisteredModel, environment: Environment
) -> DomainError | None:
    """Rule 15: a token writes only for the models of the teams it acts for (its own and those
    granted to it), in the environments it is limited to. People pass; their rules are others."""
    return token_team_denial(
        actor, team_id=model.owner_team_id, subject=model.name
    ) or token_environment_denial(actor, environment)


def _starter_denial(actor: Any, deployment: Deployment) -> DomainError | None:
    """Who reports how a deployment ended: the person who started it; or the pipeline that did,
    or another token of its team (of one of the starter's teams when a person started it)."""
    if not is_service_account(actor):
        if deployment.started_by_user_id == actor.pk:
            return None
        return RuleDenied(
            "Only the pipeline or the person who started a deployment reports its result: "
            "ask them to report it.",
            code="not_allowed_to_report",
        )
    starter = deployment.started_by_service
    if starter is not None:
        if actor.team_id == starter.team_id:
            return None
        teams = [starter.team.name]
    elif deployment.started_by_user_id is not None:
        teams = list(
            Team.objects.filter(memberships__user_id=deployment.started_by_user_id)
            .order_by("name")
            .values_list("name", flat=True)
        )
        if actor.team.name in teams:
            return None
    else:
        return None  # started by the system: any token that reaches the model reports
    return RuleDenied(
        f"Deployment {deployment.pk} was started by {deployment.started_by_name}; only "
        f"{deployment.started_by_name} or a token of {' or '.join(teams) or 'their team'} "
        f"reports its result, not a token of {actor.team.name}. Report it with their token, "
        "or ask an administrator to grant this one their team.",
        code="token_wrong_team",
    )


def may_review_unauthorised_change(
    user: Any, environment: Environment, *, environment_approver: bool | None = None
) -> bool:
    """Rule 14: an approver of the flag's environment or an administrator clears a flag."""
    if environment_approver is None:
        environment_approver = is_environment_approver(user, environment)
    return bool(getattr(user, "is_staff", False)) or environment_approver


def denial(
    user: Any, action: Action, obj: Any, *, environment_approver: bool | None = None
) -> DomainError | None:
    """Why `user` may not do `action` to `obj` now, or None. `obj` is the change request (edit,
    submit, cancel), the sign-off to withdraw, the deployment a rollback replaces or whose
    result is reported, or the unauthorised change flag. `environment_approver` lets a page that
    asks for many rows read it once."""
    if action in (Action.EDIT, Action.SUBMIT):
        return _requester_denial(user, obj) or _state_denial(action, obj)
    if action == Action.CANCEL:
        return (
            _canceller_denial(user, obj)
            or _state_denial(action, obj)
            or _deployment_running_denial(obj)
        )
    if action == Action.WITHDRAW_SIGN_OFF:
        return _withdrawal_denial(user, obj)
    if action == Action.ROLL_BACK:
        if environment_approver is None:
            environment_approver = is_environment_approver(user, obj.environment)
        if may_roll_back(actor=user, replaced=obj, environment_approver=environment_approver):
            return None
        return RuleDenied(
            "Only the change's owner, an approver of this environment or the pipeline may roll "
            f"back {obj.model.name} in {obj.environment.name}: ask one of them.",
            code="not_allowed_to_roll_back",
        )
    if action == Action.REPORT_RESULT:
        if user is None:
            return None
        return token_reach_denial(
            user, model=obj.model, environment=obj.environment
        ) or _starter_denial(user, obj)
    if action == Action.REVIEW_UNAUTHORISED_CHANGE:
        flag: UnauthorisedChange = obj
        if may_review_unauthorised_change(
            user, flag.environment, environment_approver=environment_approver
        ):
            return None
        return RuleDenied(
            f"Only an approver of {flag.environment.name} may clear this flag: ask one of "
            "them (the environment's policy names its approval teams).",
            code="not_allowed_to_review",
        )
    if action == Action.MANAGE_CALENDAR_FEED:
        return calendar_feed_owner_denial(user, obj)
    if action == Action.REVOKE_STANDARD_TEMPLATE:
        return _template_revoker_denial(user, obj)
    raise ValueError(f"Unknown action {action!r}")


def _template_revoker_denial(user, template: StandardChangeTemplate) -> DomainError | None:
    """Rule 18: a change manager, or an approver of an environment the template serves, stops
    a standard change template; those who gave the trust may take it back."""
    denial = person_denial(user)
    if denial is not None:
        return denial
    if is_change_manager(user) or any(
        is_environment_approver(user, environment) for environment in template.environments.all()
    ):
        return None
    return RuleDenied(
        f"Only a change manager or an approver of its environments may revoke {template.number}.",
        code="not_allowed_to_revoke",
    )


def calendar_feed_owner_denial(user: Any, owner: Any) -> DomainError | None:
    """A person's calendar feed is theirs alone; a team's is managed by its members."""
    denial = person_denial(user)
    if denial is not None:
        return denial
    if isinstance(owner, Team):
        if Membership.objects.filter(user=user, team=owner).exists():
            return None
        return RuleDenied(
            f"Only members of {owner.name} issue or revoke its calendar feed: ask one of them.",
            code="not_a_team_member",
        )
    if owner.pk != user.pk:
        return RuleDenied(
            "A person's calendar feed is theirs alone: issue your own on the Calendar feeds page.",
            code="not_your_feed",
        )
    return None


def may(user: Any, action: Action, obj: Any, **facts: Any) -> bool:
    return denial(user, action, obj, **facts) is None


def refuse(user: Any, action: Action, obj: Any, **facts: Any) -> None:
    """Raise the denial, if any: what a service calls before it acts."""
    found = denial(user, action, obj, **facts)
    if found is not None:
        raise found
