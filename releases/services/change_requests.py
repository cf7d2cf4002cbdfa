"""Change requests from filing to closing: one function per move. Each locks the request row
(`select_for_update`) before it reads the state, so two last signatures arriving together give
exactly one move, and refuses with a stable code what DESIGN.md rules 1-6, 8 and 11 forbid."""

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

import rfc8785
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.models import ActorKind, AuditEvent
from audit.services import audit_record
from organisation.reauthentication import password_confirms
from organisation.services import memberships_follow_groups
from organisation.step_up import (
    PendingSignature,
    ProviderReauthentication,
    pending_signature_take,
    provider_reauthentication,
    step_up_replayed,
)
from portal.exceptions import Conflict, NotFound, RuleDenied
from portal.models import Absence, Membership, Team
from registry.model_risk import model_retire
from registry.models import ModelVersion
from releases import notifications
from releases.commit_status import change_request_status_post
from releases.models import (
    ChangeRequest,
    Decision,
    Deployment,
    Environment,
    EnvironmentPolicy,
    FreezeWindow,
    RiskLevel,
    SignatureStepUp,
    SignOff,
    SignOffKind,
    StandardChangeTemplate,
)
from releases.permissions import (
    SIGN_OFF_KIND_BY_STATE,
    Action,
    Slot,
    delegate_denial,
    full_name,
    open_slots,
    person_denial,
    refuse,
    signature_meaning,
    signer_denial,
)
from releases.risk import risk_score
from releases.selectors.commits import release_commits
from releases.selectors.gate import USED_STATES
from releases.selectors.policy import environment_policy_current
from releases.selectors.standard_changes import template_diff_read
from releases.states import Kind, State, can_move

# A window may start a few minutes before the request is filed: the form takes time to fill in.
WINDOW_GRACE = timedelta(minutes=5)
EMERGENCY_VALIDITY = timedelta(hours=24)
# The change managers hear of a retrospective this long before it falls due, and again after.
RETROSPECTIVE_WARNING = timedelta(hours=12)
# Wrong passwords on the sign form count like wrong passwords at sign-in (django-axes).
REAUTH_LIMIT = getattr(settings, "AXES_FAILURE_LIMIT", 5)
REAUTH_COOLOFF = timedelta(hours=getattr(settings, "AXES_COOLOFF_TIME", 0.25))
EDITABLE_FIELDS = (
    "model_version",
    "title",
    "justification",
    "risk_impact",
    "test_evidence",
    "rollback_plan",
    "window_start",
    "window_end",
    "incident_ref",
)


def content_digest(change_request: ChangeRequest) -> str:
    """sha256 of the canonical JSON (RFC 8785) of what a signer reads: rule 5 binds each
    sign-off to it."""
    version = change_request.model_version
    body = {
        "kind": change_request.kind,
        "model": version.model.name,
        "version": version.version,
        "model_version_id": version.pk,
        "commit_sha": version.commit_sha,
        "artifact_sha256": version.artifact_sha256,
        "environment": change_request.environment.name,
        "team": change_request.team.slug,
        "title": change_request.title,
        "justification": change_request.justification,
        "risk_impact": change_request.risk_impact,
        "test_evidence": change_request.test_evidence,
        "rollback_plan": change_request.rollback_plan,
        "incident_ref": change_request.incident_ref,
    }
    # Said only when true, so the digests of every change filed before retirements stay valid.
    if change_request.retires_model:
        body["retires_model"] = True
    # A standard change is signed with the template it is made under, and a template's
    # approval with the terms it approves.
    template = change_request.standard_template
    if template is not None:
        body["standard_template"] = template_terms(template)
    # An emergency change's window is set by its authorisation, not written by the requester;
    # a template has none.
    if change_request.kind in WINDOWED_KINDS:
        body["window_start"] = _iso(change_request.window_start)
        body["window_end"] = _iso(change_request.window_end)
    return hashlib.sha256(rfc8785.dumps(body)).hexdigest()


WINDOWED_KINDS = frozenset({Kind.NORMAL, Kind.STANDARD})


def template_terms(template: StandardChangeTemplate) -> dict:
    """What a standard change template allows, as its signers read it."""
    return {
        "id": template.pk,
        "model": template.model.name,
        "environments": sorted(template.environments.values_list("name", flat=True)),
        "base_version": str(template.base_version),
        "repository": template.base_version.repository.url,
        "pipeline": template.pipeline,
        "allowed_paths": template.path_globs,
        "valid_until": _iso(template.valid_until),
        "max_uses": template.max_uses,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _content(change_request: ChangeRequest) -> dict:
    data = {name: getattr(change_request, name) for name in EDITABLE_FIELDS[1:]}
    data["model_version"] = str(change_request.model_version)
    data["content_digest"] = change_request.content_digest
    return data


def _lock(change_request: ChangeRequest) -> ChangeRequest:
    return ChangeRequest.objects.select_for_update().get(pk=change_request.pk)


def _move(change_request: ChangeRequest, target: str) -> str:
    """Change the state if states.py allows it; returns the state left."""
    before = change_request.state
    if not can_move(change_request.kind, before, target):
        raise Conflict(
            f"{change_request.number} is {change_request.get_state_display().lower()}; "
            f"it cannot become {State(target).label.lower()}. Reload its page to see what it "
            "waits for now.",
            code="invalid_transition",
        )
    change_request.state = target
    change_request_status_post(change_request=change_request)
    return before


def _retire_once_approved(change_request: ChangeRequest, *, actor, request) -> None:
    """A retirement change retires its model the moment it is approved: from then on the gate
    refuses the model everywhere (`model_retired`)."""
    if change_request.retires_model and change_request.state == State.APPROVED:
        model_retire(
            actor=actor,
            model=change_request.model_version.model,
            change_request=change_request.number,
            request=request,
        )


def _require_person(actor) -> None:
    denial = person_denial(actor)
    if denial is not None:
        raise denial


def _policy(environment: Environment) -> EnvironmentPolicy:
    policy = environment_policy_current(environment=environment)
    if policy is None:
        raise Conflict(
            f"{environment.name} has no approval policy yet, so no change can be filed for it. "
            "An administrator sets one in Admin → Environment policies.",
            code="no_policy",
        )
    return policy


def _owner_team(actor, model_version: ModelVersion, team: Team | None) -> Team:
    """Rule 2: only members of the model's owner team file its changes, and that team (not
    the requester's other teams) peer-reviews them."""
    model = model_version.model
    owner = model.owner_team
    if team is not None and team.pk != owner.pk:
        raise RuleDenied(
            f"{model.name} belongs to {owner.name}: its changes are filed and peer-reviewed "
            f"there, not in {team.name}.",
            code="not_owner_team",
        )
    if not Membership.objects.filter(user=actor, team=owner).exists():
        raise RuleDenied(
            f"Only members of {owner.name}, which owns {model.name}, file its changes: ask "
            f"one of them, or ask an administrator to add you to {owner.name}.",
            code="not_owner_team",
        )
    return owner


def _check_build(model_version: ModelVersion) -> ModelVersion:
    """Rule 1: the request names one registered build, read back from the registry."""
    found = (
        ModelVersion.objects.select_related("model", "repository")
        .filter(pk=model_version.pk)
        .first()
        if model_version.pk
        else None
    )
    if found is None:
        raise NotFound(
            "This model version is not registered. CI registers each build "
            "(gatehouse_ci.py build, docs/ci.md); choose a version the registry lists.",
            code="unknown_build",
        )
    return found


def _check_window(
    *,
    kind: str,
    environment: Environment,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
) -> None:
    """Rule 8: a normal or standard change names a future window that no freeze overlaps. An
    emergency change gets its window when it is authorised; a template needs none."""
    if kind not in WINDOWED_KINDS:
        return
    if start is None or end is None:
        raise RuleDenied(
            "A normal change needs a planned window: give its start and end; the deployment "
            "may happen only inside it.",
            code="window_required",
        )
    if end <= start:
        raise ValidationError(
            {
                "window_end": ValidationError(
                    "The window must end after it starts: choose an end after the start.",
                    code="window_order",
                )
            }
        )
    if start < now - WINDOW_GRACE:
        raise RuleDenied(
            f"The window starts in the past ({start:%Y-%m-%d %H:%M %Z}); choose a start from "
            "now on (the filing form suggests the next free window).",
            code="window_in_past",
        )
    freeze = (
        FreezeWindow.objects.filter(
            environment=environment,
            cancelled_at__isnull=True,
            starts_at__lt=end,
            ends_at__gt=start,
        )
        .order_by("starts_at")
        .first()
    )
    if freeze is not None:
        raise RuleDenied(
            f"The window falls in the {environment.name} freeze from "
            f"{freeze.starts_at:%Y-%m-%d %H:%M} to {freeze.ends_at:%Y-%m-%d %H:%M} "
            f"({freeze.reason}). Choose a window after the freeze ends, or, for an urgent fix, "
            "file an emergency change.",
            code="freeze_in_effect",
        )


def _check_emergency(
    *,
    policy: EnvironmentPolicy,
    model_version: ModelVersion,
    incident_ref: str,
    justification,
    now: datetime,
) -> None:
    """Rule 11: an incident and a reason; none while a retrospective for the model is overdue."""
    if not policy.emergency_allowed:
        raise RuleDenied(
            f"The {policy.environment.name} policy does not allow emergency changes: file a "
            "normal change instead.",
            code="emergency_not_allowed",
        )
    if not incident_ref.strip() or not justification.strip():
        raise RuleDenied(
            "An emergency change needs an incident reference and a justification: give both "
            "and file it again.",
            code="incident_required",
        )
    overdue = (
        ChangeRequest.objects.filter(
            kind=Kind.EMERGENCY,
            state=State.RETRO_REVIEW,
            model_version__model_id=model_version.model_id,
            retrospective_due_at__lt=now,
        )
        .order_by("retrospective_due_at")
        .first()
    )
    if overdue is not None:
        raise RuleDenied(
            f"The retrospective of emergency change {overdue.number} for "
            f"{model_version.model.name} is overdue; no new emergency change until it is done. "
            f"Each approval team signs it on the page of {overdue.number}.",
            code="retrospective_overdue",
        )


TEMPLATED_KINDS = frozenset({Kind.STANDARD, Kind.STANDARD_TEMPLATE})


def _check_content(
    change_request: ChangeRequest, policy: EnvironmentPolicy, now: datetime | None = None
) -> None:
    now = now or timezone.now()
    if change_request.kind == Kind.EMERGENCY:
        _check_emergency(
            policy=policy,
            model_version=change_request.model_version,
            incident_ref=change_request.incident_ref,
            justification=change_request.justification,
            now=now,
        )
    elif change_request.kind in TEMPLATED_KINDS and change_request.standard_template is None:
        raise RuleDenied(
            "A standard change, and a template's approval, name their standard change template.",
            code="standard_template_required",
        )
    elif not policy.needs_change_request:
        raise RuleDenied(
            f"{change_request.environment.name} needs no change request: its policy lets CI "
            "deploy there without one, so nothing needs filing: the pipeline deploys the build.",
            code="change_request_not_needed",
        )
    _check_window(
        kind=change_request.kind,
        environment=change_request.environment,
        start=change_request.window_start,
        end=change_request.window_end,
        now=now,
    )


@transaction.atomic
def change_request_create(
    *,
    actor: AbstractBaseUser,
    model_version: ModelVersion,
    environment: Environment,
    title: str,
    justification: str,
    rollback_plan: str,
    risk_impact: str = "",
    test_evidence: str = "",
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    kind: str = Kind.NORMAL,
    incident_ref: str = "",
    team: Team | None = None,
    retires_model: bool = False,
    standard_template: StandardChangeTemplate | None = None,
    request=None,
    now: datetime | None = None,
) -> ChangeRequest:
    """A draft for one exact build (rule 1) to one environment, on behalf of the requester's
    team (whose members give the peer review). A normal change may retire its model instead:
    approved like any other, it then retires the model (issue 16)."""
    _require_person(actor)
    model_version = _check_build(model_version)
    policy = _policy(environment)
    production = Environment.objects.filter(pk=environment.pk, is_production=True).exists()
    if retires_model and not production:
        # Retiring stops the model everywhere, so it takes production's signatures, not those
        # of an environment that asks less.
        raise Conflict(
            f"A retirement is filed for a production environment, not {environment.name}: "
            "choose the production environment.",
            code="retirement_needs_production",
        )
    change_request = ChangeRequest(
        kind=kind,
        state=State.DRAFT,
        model_version=model_version,
        environment=environment,
        requester=actor,
        team=_owner_team(actor, model_version, team),
        title=title,
        justification=justification,
        risk_impact=risk_impact,
        test_evidence=test_evidence,
        rollback_plan=rollback_plan,
        window_start=window_start if kind in WINDOWED_KINDS else None,
        window_end=window_end if kind in WINDOWED_KINDS else None,
        incident_ref=incident_ref,
        retires_model=retires_model and kind == Kind.NORMAL,
        standard_template=standard_template if kind in TEMPLATED_KINDS else None,
        policy=policy,
    )
    _check_content(change_request, policy, now)
    change_request.content_digest = content_digest(change_request)
    change_request.full_clean()
    change_request.save()
    audit_record(
        actor=actor,
        action=AuditAction.CHANGE_REQUEST_CREATED,
        target=change_request,
        environment=environment,
        data={
            "kind": kind,
            "policy_version": policy.version,
            "retires_model": change_request.retires_model,
            "standard_template": change_request.standard_template_id,
            **_content(change_request),
        },
        request=request,
    )
    return change_request


@transaction.atomic
def change_request_edit(
    *, actor: AbstractBaseUser, change_request: ChangeRequest, request=None, **changes
) -> ChangeRequest:
    """Rule 5: editing a submitted request sends it back to draft and voids its sign-offs, so
    nobody's signature stands under content they did not see."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"Not editable: {', '.join(sorted(unknown))}")
    change_request = _lock(change_request)
    refuse(actor, Action.EDIT, change_request)
    before = _content(change_request)
    if "model_version" in changes:
        changes["model_version"] = _check_build(changes["model_version"])
    for name, value in changes.items():
        setattr(change_request, name, value)
    policy = _policy(change_request.environment)
    _check_content(change_request, policy)
    change_request.content_digest = content_digest(change_request)
    if change_request.content_digest == before["content_digest"]:
        return change_request
    state_before = change_request.state
    if state_before != State.DRAFT:
        _move(change_request, State.DRAFT)
        change_request.submitted_at = None
    now = timezone.now()
    voided = list(
        change_request.sign_offs.filter(voided_at__isnull=True).values_list("pk", flat=True)
    )
    SignOff.objects.filter(pk__in=voided).update(
        voided_at=now, voided_reason="The change request was edited after this sign-off."
    )
    change_request.policy = policy
    change_request.full_clean()
    change_request.save()
    audit_record(
        actor=actor,
        action=AuditAction.CHANGE_REQUEST_EDITED,
        target=change_request,
        environment=change_request.environment,
        data={
            "before": before,
            "after": _content(change_request),
            "state_before": state_before,
            "state_after": change_request.state,
            "voided_sign_offs": voided,
        },
        request=request,
    )
    return change_request


@transaction.atomic
def change_request_submit(
    *,
    actor: AbstractBaseUser,
    change_request: ChangeRequest,
    request=None,
    now: datetime | None = None,
) -> ChangeRequest:
    """Send a draft to its first signers: the peer reviewer where the policy asks (rule 2), else
    the approval teams its risk level needs (rule 18), else it is approved; an emergency change
    goes to the emergency approvers, a standard change to its peer reviewer alone. The risk
    score is computed and kept here, and a standard change's commits are compared with its
    template's paths."""
    change_request = _lock(change_request)
    refuse(actor, Action.SUBMIT, change_request)
    policy = _policy(change_request.environment)
    now = now or timezone.now()
    _check_content(change_request, policy, now)
    score = risk_score(change_request=change_request, policy=policy, now=now)
    change_request.risk_score, change_request.risk_level = score.score, score.level
    change_request.risk_factors, change_request.risk_policy = score.factors_data(), policy
    if change_request.kind == Kind.STANDARD:
        _check_standard_path(change_request, policy)
        change_request.template_diff = template_diff_read(
            template=change_request.standard_template, model_version=change_request.model_version
        )
    if change_request.kind == Kind.EMERGENCY:
        target = State.AWAITING_AUTHORISATION
    elif policy.needs_peer_review or change_request.kind == Kind.STANDARD:
        target = State.IN_REVIEW
    elif policy.teams_for(change_request):
        target = State.IN_APPROVAL
    else:
        target = State.APPROVED
    state_before = _move(change_request, target)
    change_request.policy = policy
    change_request.submitted_at = now
    change_request.full_clean()
    change_request.save()
    notifications.change_request_waiting(change_request=change_request)
    audit_record(
        actor=actor,
        action=AuditAction.CHANGE_REQUEST_SUBMITTED,
        target=change_request,
        environment=change_request.environment,
        data={
            "state_before": state_before,
            "state_after": change_request.state,
            "policy_version": policy.version,
            "content_digest": change_request.content_digest,
            "risk": {
                "score": score.score,
                "level": score.level,
                "factors": change_request.risk_factors,
                "policy_version": score.policy_version,
            },
            **(
                {"template_diff": change_request.template_diff}
                if change_request.kind == Kind.STANDARD
                else {}
            ),
        },
        request=request,
    )
    _retire_once_approved(change_request, actor=actor, request=request)
    return change_request


def _check_standard_path(change_request: ChangeRequest, policy: EnvironmentPolicy) -> None:
    """Rule 18: the fast track is earned. The policy must allow standard changes, and the
    change's risk must be low; anything else is filed as a normal change."""
    if not policy.standard_changes_allowed:
        raise RuleDenied(
            f"The {policy.environment.name} policy (v{policy.version}) allows no standard "
            "changes; file a normal change.",
            code="standard_changes_not_allowed",
        )
    if change_request.risk_level != RiskLevel.LOW:
        raise RuleDenied(
            f"This change's risk is {change_request.risk_level} ({change_request.risk_score} "
            "points); only a low-risk change may be made under a standard template. File a "
            "normal change.",
            code="risk_too_high_for_standard",
        )


@transaction.atomic
def change_request_file(
    *, actor: AbstractBaseUser, request=None, now: datetime | None = None, **fields
) -> ChangeRequest:
    """Create and submit in one transaction: what the form's "file" button and the API do."""
    change_request = change_request_create(actor=actor, request=request, now=now, **fields)
    return change_request_submit(
        actor=actor, change_request=change_request, request=request, now=now
    )


def _choose_slot(
    *,
    actor,
    change_request: ChangeRequest,
    slots: list[Slot],
    team: Team | None,
    memberships,
    delegated_team_ids: set[int] | None = None,
) -> Slot:
    """The slot `team` names, else the only one the signer may fill: by their approver roles,
    or, signing as a delegate, by the teams of the principal's absence (`delegated_team_ids`)."""
    kind = SIGN_OFF_KIND_BY_STATE[change_request.state]
    if kind in (SignOffKind.PEER_REVIEW, SignOffKind.EMERGENCY_AUTHORISATION):
        return slots[0]
    if team is not None:
        for slot in slots:
            if slot.team.pk == team.pk:
                return slot
        policy_team_ids = {t.pk for t in change_request.policy.approval_teams.all()}
        if team.pk not in policy_team_ids:
            raise RuleDenied(
                f"{team.name} is not an approval team of the {change_request.environment.name} "
                "policy: choose one of the teams the sign page lists.",
                code="team_not_required",
            )
        raise Conflict(
            f"{team.name} has already signed {change_request.number}: one sign-off per team, "
            f"nothing more is needed from {team.name}.",
            code="team_already_signed",
        )
    if delegated_team_ids is not None:
        mine = [s for s in slots if s.team.pk in delegated_team_ids]
        if delegated_team_ids and not mine:
            raise Conflict(
                "The team you stand in for has already signed; nothing more is needed from you.",
                code="team_already_signed",
            )
    else:
        mine = [
            s for s in slots if any(m.team_id == s.team.pk and m.is_approver for m in memberships)
        ]
    if len(mine) > 1:
        raise RuleDenied(
            "Choose the team you sign for: the sign page lists the teams you may sign for.",
            code="team_required",
        )
    return mine[0] if mine else slots[0]


def _reauth_failures(actor: AbstractBaseUser, now: datetime) -> int:
    return AuditEvent.objects.filter(
        action=AuditAction.CHANGE_REQUEST_REAUTH_FAILED,
        actor_kind=ActorKind.USER,
        actor_id=str(actor.pk),
        occurred_at__gte=now - REAUTH_COOLOFF,
    ).count()


@transaction.atomic
def _reauth_failure_record(*, actor, change_request: ChangeRequest, request) -> None:
    audit_record(
        actor=actor,
        action=AuditAction.CHANGE_REQUEST_REAUTH_FAILED,
        target=change_request,
        environment=change_request.environment,
        data={"reason": "wrong password"},
        request=request,
    )


def change_request_sign(
    *,
    actor: AbstractBaseUser,
    change_request: ChangeRequest,
    decision: str,
    password: str,
    content_digest: str,
    team: Team | None = None,
    comment: str = "",
    on_behalf_of: AbstractBaseUser | None = None,
    request=None,
    now: datetime | None = None,
) -> SignOff:
    """Give the signature the request waits for in its state: peer review, team approval,
    emergency authorisation or retrospective review. With `on_behalf_of`, a team approval is
    given as the delegate of that absent approver (`permissions.delegate_denial`).

    Rule 6: the signer re-enters their password (checked, never stored) and the meaning, the
    digest of the content they saw (rule 5) and the policy version (rule 13) are stored on the
    sign-off and in the audit event. Rule 4 is checked against the rows read under the lock.

    A wrong password is recorded after the refused signature rolled back, so the attempt stays
    on record, and after `REAUTH_LIMIT` of them in `REAUTH_COOLOFF` signing is refused: the sign
    form must not become a password oracle that the sign-in throttling does not see.
    """
    try:
        return _sign(
            actor=actor,
            change_request=change_request,
            decision=decision,
            password=password,
            at_provider=None,
            content_digest=content_digest,
            team=team,
            comment=comment,
            on_behalf_of=on_behalf_of,
            request=request,
            now=now,
        )
    except RuleDenied as error:
        if error.code == "reauth_failed":
            _reauth_failure_record(actor=actor, change_request=change_request, request=request)
        raise


def _check_decision(decision: str, comment: str) -> None:
    if decision not in Decision.values:
        raise RuleDenied(
            "Choose Approve or Reject: a sign-off needs a decision.", code="invalid_decision"
        )
    if decision == Decision.REJECT and not comment.strip():
        raise ValidationError(
            {"comment": ValidationError("Say why you reject.", code="comment_required")}
        )


def _check_digest(change_request: ChangeRequest, content_digest: str) -> None:
    if content_digest != change_request.content_digest:
        raise Conflict(
            f"{change_request.number} changed since you read it, and a signature binds to "
            "what was read: read it again, then sign.",
            code="content_changed",
        )


def _check_assurance(policy: EnvironmentPolicy, at_provider: ProviderReauthentication | None):
    """A policy's `required_acr`: the provider must have confirmed the signer at that level; a
    password typed again never reaches it."""
    if not policy.required_acr:
        return
    environment = policy.environment.name
    if at_provider is None:
        raise RuleDenied(
            f"{environment} takes only signatures confirmed at the identity provider with "
            f"{policy.required_acr}; a password is not enough.",
            code="acr_not_met",
        )
    if at_provider.acr != policy.required_acr:
        achieved = at_provider.acr or "no stated level"
        raise RuleDenied(
            f"{environment} takes only signatures confirmed at the identity provider with "
            f"{policy.required_acr}; you signed in there with {achieved}. Sign in again at the "
            "level asked for.",
            code="acr_not_met",
        )


@transaction.atomic
def _sign(
    *,
    actor: AbstractBaseUser,
    change_request: ChangeRequest,
    decision: str,
    password: str | None,
    at_provider: ProviderReauthentication | None,
    content_digest: str,
    team: Team | None,
    comment: str,
    on_behalf_of: AbstractBaseUser | None,
    request,
    now: datetime | None,
) -> SignOff:
    _require_person(actor)
    if _reauth_failures(actor, now or timezone.now()) >= REAUTH_LIMIT:
        raise RuleDenied(
            "Too many wrong passwords: signing is locked for a while. Ask an administrator if "
            "it was not you.",
            code="reauth_locked",
        )
    change_request = _lock(change_request)
    kind = SIGN_OFF_KIND_BY_STATE.get(change_request.state)
    if kind is None:
        raise Conflict(
            f"{change_request.number} is {change_request.get_state_display().lower()}; it waits "
            "for no signature, so there is nothing to sign.",
            code="invalid_transition",
        )
    _check_decision(decision, comment)
    if at_provider is None and (not password or not password_confirms(actor, password)):
        raise RuleDenied(
            "The password is not right; nothing was signed. Type your sign-in password again "
            "(several wrong attempts lock signing for a while).",
            code="reauth_failed",
        )
    _check_digest(change_request, content_digest)
    policy = _policy(change_request.environment)
    _check_assurance(policy, at_provider)
    change_request.policy = policy
    approval_teams = policy.teams_for(change_request)
    sign_offs = list(change_request.sign_offs.filter(voided_at__isnull=True))
    slots = open_slots(change_request, approval_teams, sign_offs)
    if not slots:
        raise Conflict(
            f"{change_request.number} has all its signatures; nothing waits for yours, and "
            "there is nothing more to do.",
            code="complete",
        )
    memberships = list(Membership.objects.filter(user=actor))
    now = now or timezone.now()
    today = timezone.localdate(now)
    principal, absences = None, []
    if on_behalf_of is not None:
        principal = get_user_model().objects.get(pk=on_behalf_of.pk)
        # Locked: an absence cancelled meanwhile is seen, or waits for this signature.
        absences = list(
            Absence.objects.select_for_update().filter(
                person_id__in=[principal.pk, actor.pk], cancelled_at__isnull=True
            )
        )
    lent = _places_lent(absences, principal=principal, delegate=actor, day=today)
    slot = _choose_slot(
        actor=actor,
        change_request=change_request,
        slots=slots,
        team=team,
        memberships=memberships,
        delegated_team_ids={a.team_id for a in lent} if principal is not None else None,
    )
    commit_authors = None
    if policy.exclude_commit_authors:
        commits = release_commits(
            model_version=change_request.model_version, environment=change_request.environment
        )
        if not commits.known:
            raise RuleDenied(
                f"The commits of this release cannot be read ({commits.note}); the policy "
                "excludes their authors, so nobody can sign yet. An administrator fixes the "
                "repository's mirror (Admin → Repositories); then sign again.",
                code="commits_unknown",
            )
        commit_authors = commits.author_emails
    if principal is None:
        denial = signer_denial(
            user=actor,
            change_request=change_request,
            slot=slot,
            memberships=memberships,
            sign_offs=sign_offs,
            commit_author_emails=commit_authors,
            authoriser_excluded=policy.retrospective_excludes_authoriser,
        )
    else:
        denial = delegate_denial(
            user=actor,
            principal=principal,
            change_request=change_request,
            slot=slot,
            memberships=memberships,
            principal_memberships=Membership.objects.filter(user=principal),
            sign_offs=sign_offs,
            absences=absences,
            today=today,
            commit_author_emails=commit_authors,
        )
    if denial is not None:
        raise denial
    signing_team = slot.team
    if kind == SignOffKind.EMERGENCY_AUTHORISATION:
        signing_team = next(m.team for m in memberships if m.is_emergency_approver)
    sign_off = SignOff(
        change_request=change_request,
        kind=kind,
        team=signing_team,
        signer=actor,
        decision=decision,
        comment=comment,
        meaning=signature_meaning(
            change_request=change_request, slot=slot, decision=decision, principal=principal
        ),
        content_digest=change_request.content_digest,
        policy=policy,
        reauthenticated=True,
        auth_time=at_provider.auth_time if at_provider else None,
        acr=at_provider.acr if at_provider else "",
        signed_at=now,
        on_behalf_of=principal,
    )
    sign_off.full_clean()
    sign_off.save()
    state_before = change_request.state
    remaining = [s for s in slots if s != slot]
    if decision == Decision.REJECT and kind != SignOffKind.RETROSPECTIVE:
        _move(change_request, State.REJECTED)
    elif kind == SignOffKind.PEER_REVIEW:
        # Approvals that stand (the peer review alone was withdrawn) are not asked again.
        _move(change_request, _step_waited_for(policy, change_request, [*sign_offs, sign_off]))
    elif kind == SignOffKind.EMERGENCY_AUTHORISATION:
        _move(change_request, State.AUTHORISED)
        change_request.window_start, change_request.window_end = now, now + EMERGENCY_VALIDITY
    elif not remaining:
        _move(
            change_request,
            State.CLOSED if kind == SignOffKind.RETROSPECTIVE else State.APPROVED,
        )
    change_request.full_clean()
    change_request.save()
    notifications.change_request_decided(change_request=change_request, sign_off=sign_off)
    notifications.change_request_waiting(change_request=change_request)
    audit_record(
        actor=actor,
        action=AuditAction.CHANGE_REQUEST_SIGNED,
        target=change_request,
        environment=change_request.environment,
        data={
            "sign_off": sign_off.pk,
            "kind": kind,
            "team": signing_team.slug if signing_team else None,
            "decision": decision,
            "comment": comment,
            "meaning": sign_off.meaning,
            "content_digest": sign_off.content_digest,
            "policy_version": policy.version,
            "reauthenticated": True,
            "reauthenticated_by": "identity_provider" if at_provider else "password",
            **({"auth_time": at_provider.auth_time, "acr": at_provider.acr} if at_provider else {}),
            "signed_at": sign_off.signed_at,
            "state_before": state_before,
            "state_after": change_request.state,
            **_delegation_record(principal, lent, slot=slot),
        },
        request=request,
    )
    _retire_once_approved(change_request, actor=actor, request=request)
    return sign_off


@transaction.atomic
def change_request_step_up_begin(
    *,
    actor: AbstractBaseUser,
    change_request: ChangeRequest,
    decision: str,
    content_digest: str,
    team: Team | None = None,
    comment: str = "",
    on_behalf_of: AbstractBaseUser | None = None,
    now: datetime | None = None,
) -> SignatureStepUp:
    """Rule 6 for people who sign in at the identity provider: their choice on the sign form
    waits here, under a fresh state, nonce and PKCE verifier, while they sign in there again
    (`organisation.oidc.step_up_url`). What can be refused already is, so nobody is sent away
    for nothing; everything is checked again when they come back. Nothing is signed yet, so
    nothing is audited yet: the signature's event records when this began."""
    _require_person(actor)
    change_request = ChangeRequest.objects.get(pk=change_request.pk)
    if SIGN_OFF_KIND_BY_STATE.get(change_request.state) is None:
        raise Conflict(
            f"{change_request.number} is {change_request.get_state_display().lower()}; it waits "
            "for no signature, so there is nothing to sign.",
            code="invalid_transition",
        )
    _check_decision(decision, comment)
    _check_digest(change_request, content_digest)
    policy = _policy(change_request.environment)
    step_up = SignatureStepUp(
        change_request=change_request,
        signer=actor,
        team=team,
        on_behalf_of=on_behalf_of,
        decision=decision,
        comment=comment,
        content_digest=content_digest,
        acr_values=policy.required_acr,
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        code_verifier=secrets.token_urlsafe(64),
        issued_at=now or timezone.now(),
    )
    step_up.full_clean()
    step_up.save()
    return step_up


@transaction.atomic
def _step_up_refusal_record(*, actor, step_up: SignatureStepUp, code: str, request) -> None:
    SignatureStepUp.objects.filter(pk=step_up.pk).update(refusal=code)
    audit_record(
        actor=actor,
        action=AuditAction.CHANGE_REQUEST_STEP_UP_REFUSED,
        target=step_up.change_request,
        environment=step_up.change_request.environment,
        data={"code": code, "issued_at": step_up.issued_at},
        request=request,
    )


@transaction.atomic
def _step_up_take(*, actor, state: str, now: datetime) -> SignatureStepUp:
    return pending_signature_take(
        SignatureStepUp.objects.select_related("change_request__environment", "team"),
        actor=actor,
        state=state,
        now=now,
        unknown="No signature of yours waits for this answer of the identity provider: start "
        "signing again from the change's page.",
    )


def change_request_step_up_take(
    *, actor: AbstractBaseUser, state: str, request=None, now: datetime | None = None
) -> SignatureStepUp:
    """The pending signature the provider's answer names by its `state`, taken once and before
    the provider is asked anything more: the same answer arriving again (a replayed callback)
    is refused and recorded. Only its signer may take it."""
    try:
        return _step_up_take(actor=actor, state=state, now=now or timezone.now())
    except Conflict as error:
        step_up = SignatureStepUp.objects.select_related("change_request__environment").get(
            state=state
        )
        _step_up_refusal_record(actor=actor, step_up=step_up, code=error.code, request=request)
        raise


def _step_up_denial(
    *, actor, step_up: SignatureStepUp, claims: Mapping, now: datetime
) -> ProviderReauthentication:
    """Whether the provider's verified claims confirm this very signature by this signer, just
    now (`organisation.step_up`); the confirmation to sign with if they do."""
    return provider_reauthentication(
        actor=actor,
        pending=PendingSignature(
            signer_id=step_up.signer_id,
            nonce=step_up.nonce,
            issued_at=step_up.issued_at,
            taken=step_up.taken_at is not None,
            used=step_up.sign_off_id is not None or bool(step_up.refusal),
        ),
        claims=claims,
        now=now,
    )


@transaction.atomic
def _sign_at_provider(
    *,
    actor,
    step_up: SignatureStepUp,
    confirmation: ProviderReauthentication,
    request,
    now: datetime,
) -> SignOff:
    step_up = SignatureStepUp.objects.select_for_update().get(pk=step_up.pk)
    if step_up.sign_off_id is not None or step_up.refusal:
        raise step_up_replayed()
    sign_off = _sign(
        actor=actor,
        change_request=step_up.change_request,
        decision=step_up.decision,
        password=None,
        at_provider=confirmation,
        content_digest=step_up.content_digest,
        team=step_up.team,
        comment=step_up.comment,
        on_behalf_of=step_up.on_behalf_of,
        request=request,
        now=now,
    )
    step_up.sign_off = sign_off
    step_up.save(update_fields=["sign_off"])
    return sign_off


def change_request_sign_at_provider(
    *,
    actor: AbstractBaseUser,
    step_up: SignatureStepUp,
    claims: Mapping,
    groups: list[str] | None = None,
    request=None,
    now: datetime | None = None,
) -> SignOff:
    """Rule 6 for single sign-on: give the signature `step_up` waited for, once the identity
    provider confirmed its signer. `claims` are the ID token's, its signature, issuer, audience
    and expiry already checked (`organisation.oidc.step_up_answer`); this decides whether they
    confirm this signature: the nonce of this pending signature and no other, the signer's own
    subject, a sign-in (`auth_time`) after they were sent there and at most
    GATEHOUSE_OIDC_STEP_UP_SECONDS ago, and the `acr` the policy asks for. The signer's team
    roles follow the provider's `groups` first, as at sign-in, and stay so whatever follows.
    Then every rule of `change_request_sign` applies; `auth_time` and `acr` are stored on the
    sign-off and in its event. A refusal is recorded and uses the pending signature up."""
    now = now or timezone.now()
    step_up = SignatureStepUp.objects.select_related("change_request__environment", "team").get(
        pk=step_up.pk
    )
    try:
        confirmation = _step_up_denial(actor=actor, step_up=step_up, claims=claims, now=now)
        mapping = getattr(settings, "GATEHOUSE_OIDC_TEAM_GROUPS", [])
        if groups is not None and mapping:
            memberships_follow_groups(user=actor, groups=groups, mapping=mapping)
        return _sign_at_provider(
            actor=actor, step_up=step_up, confirmation=confirmation, request=request, now=now
        )
    except (RuleDenied, Conflict) as error:
        if error.code != "step_up_not_taken":
            _step_up_refusal_record(actor=actor, step_up=step_up, code=error.code, request=request)
        raise


def _places_lent(absences: list[Absence], *, principal, delegate, day) -> list[Absence]:
    """The absences of `principal` in force on `day` that name `delegate`."""
    if principal is None:
        return []
    return [
        absence
        for absence in absences
        if absence.person_id == principal.pk
        and absence.delegate_id == delegate.pk
        and absence.covers(day)
    ]


def _delegation_record(principal, lent: list[Absence], *, slot: Slot) -> dict:
    """What the signing event says of a delegation: the absent principal (id and name, as they
    were then) and the absence that lent their place. Nothing for a signature in one's own
    name, so the events written before delegation read the same."""
    if principal is None:
        return {}
    absence = next(a for a in lent if a.team_id == slot.team.pk)
    return {
        "on_behalf_of": {
            "id": principal.pk,
            "username": principal.get_username(),
            "name": full_name(principal),
            "absence": absence.pk,
        }
    }


# The steps of a normal change on its way, in order: a withdrawal only ever moves back.
STEPS = (State.IN_REVIEW, State.IN_APPROVAL, State.APPROVED)


def _step_waited_for(
    policy: EnvironmentPolicy, change_request: ChangeRequest, sign_offs: list[SignOff]
) -> str:
    """Where a normal or standard change belongs given the sign-offs that stand and the policy
    in force: peer review first where the policy asks for it (always, for a standard change),
    then each approval team its risk needs, then approved."""
    missing, peer_missing = signatures_missing(
        sign_offs,
        approval_teams=policy.teams_for(change_request),
        needs_peer_review=policy.needs_peer_review or change_request.kind == Kind.STANDARD,
    )
    if peer_missing:
        return State.IN_REVIEW
    return State.IN_APPROVAL if missing else State.APPROVED


def _reason(reason: str, what: str) -> str:
    reason = reason.strip()
    if not reason:
        raise ValidationError(
            {"reason": ValidationError(f"Say why you {what}.", code="reason_required")}
        )
    limit = SignOff._meta.get_field("voided_reason").max_length
    if len(reason) > limit:
        raise ValidationError(
            {
                "reason": ValidationError(
                    f"Say it in {limit} characters at most.", code="reason_too_long"
                )
            }
        )
    return reason


@transaction.atomic
def sign_off_withdraw(
    *,
    actor: AbstractBaseUser,
    sign_off: SignOff,
    reason: str,
    request=None,
    now: datetime | None = None,
) -> SignOff:
    """A signer changes their mind: their peer review or team approval is voided (kept, with
    who withdrew it and why) and the change goes back to the step it now waits for, before it
    is deployed. Every reader of sign-offs skips void ones, so the gate no longer counts it."""
    change_request = _lock(sign_off.change_request)
    sign_off = SignOff.objects.select_related("team", "signer").get(pk=sign_off.pk)
    sign_off.change_request = change_request
    refuse(actor, Action.WITHDRAW_SIGN_OFF, sign_off)
    reason = _reason(reason, "withdraw your sign-off")
    sign_off.voided_at = now or timezone.now()
    sign_off.voided_reason = reason
    sign_off.withdrawn_by = actor
    sign_off.full_clean()
    sign_off.save(update_fields=["voided_at", "voided_reason", "withdrawn_by"])
    policy = _policy(change_request.environment)
    state_before = change_request.state
    target = _step_waited_for(policy, change_request, list(change_request.sign_offs.all()))
    if state_before in STEPS and STEPS.index(target) < STEPS.index(state_before):
        _move(change_request, target)
        change_request.policy = policy
        change_request.save(update_fields=["state", "policy", "updated_at"])
    else:
        # The change's record moved even where its state did not (`updated_since` readers).
        change_request.save(update_fields=["updated_at"])
    notifications.sign_off_withdrawn(change_request=change_request, sign_off=sign_off)
    notifications.change_request_waiting(change_request=change_request)
    audit_record(
        actor=actor,
        action=AuditAction.SIGN_OFF_WITHDRAWN,
        target=change_request,
        environment=change_request.environment,
        data={
            "sign_off": sign_off.pk,
            "kind": sign_off.kind,
            "team": sign_off.team.slug if sign_off.team else None,
            "decision": sign_off.decision,
            "signed_at": sign_off.signed_at,
            "reason": reason,
            "policy_version": policy.version,
            "state_before": state_before,
            "state_after": change_request.state,
        },
        request=request,
    )
    return sign_off


@transaction.atomic
def change_request_cancel(
    *, actor: AbstractBaseUser, change_request: ChangeRequest, reason: str, request=None
) -> ChangeRequest:
    """The requester, or a change manager, calls off a change that is not yet deployed (an
    approved one included), saying why. Its signers and those it waited for are told."""
    change_request = _lock(change_request)
    refuse(actor, Action.CANCEL, change_request)
    reason = _reason(reason, "cancel")
    waited_for = notifications.people_waited_for(change_request=change_request)
    state_before = _move(change_request, State.CANCELLED)
    change_request.save()
    notifications.change_request_cancelled(
        change_request=change_request, actor=actor, reason=reason, waited_for=waited_for
    )
    audit_record(
        actor=actor,
        action=AuditAction.CHANGE_REQUEST_CANCELLED,
        target=change_request,
        environment=change_request.environment,
        data={
            "state_before": state_before,
            "state_after": change_request.state,
            "reason": reason,
        },
        request=request,
    )
    return change_request


@transaction.atomic
def change_request_expire(
    *, actor: AbstractBaseUser | None, change_request: ChangeRequest, request=None
) -> ChangeRequest:
    """An approved (or authorised) change whose window passed unused authorises nothing more."""
    change_request = _lock(change_request)
    if change_request.window_end is None or change_request.window_end > timezone.now():
        raise Conflict(
            f"The window of {change_request.number} is not over; it expires only after its end.",
            code="window_not_over",
        )
    state_before = _move(change_request, State.EXPIRED)
    change_request.save()
    audit_record(
        actor=actor,
        action=AuditAction.CHANGE_REQUEST_EXPIRED,
        target=change_request,
        environment=change_request.environment,
        data={"state_before": state_before, "window_end": change_request.window_end},
        request=request,
    )
    return change_request


def signatures_missing(
    sign_offs: Iterable[SignOff], *, approval_teams: list[Team], needs_peer_review: bool
) -> tuple[list[Team], bool]:
    """The approval teams, and whether the peer review, that the approvals standing among
    `sign_offs` do not cover under these rules: the one reckoning of what a change still waits
    for, whether a withdrawal or a new policy asks."""
    standing = [s for s in sign_offs if s.voided_at is None and s.decision == Decision.APPROVE]
    signed_teams = {s.team_id for s in standing if s.kind == SignOffKind.APPROVAL}
    missing = [team for team in approval_teams if team.pk not in signed_teams]
    peer_missing = needs_peer_review and not any(
        s.kind == SignOffKind.PEER_REVIEW for s in standing
    )
    return missing, peer_missing


def change_requests_reopen_for_policy(
    *, actor, policy: EnvironmentPolicy, request=None
) -> list[ChangeRequest]:
    """Rule 13: an approved change must satisfy the policy in force when it deploys. Runs in
    the transaction that writes `policy`: every approved normal change of its environment that
    lacks the peer review or an approval team the new version asks for goes back to review or
    approval, for the missing signatures only (those given stay valid), each audited, and the
    people it now waits for are told."""
    reopened = []
    approved = ChangeRequest.objects.select_for_update().filter(
        environment=policy.environment_id,
        kind__in=[Kind.NORMAL, Kind.STANDARD],
        state=State.APPROVED,
    )
    for change_request in approved.prefetch_related("sign_offs"):
        missing, peer_missing = signatures_missing(
            change_request.sign_offs.all(),
            approval_teams=policy.teams_for(change_request),
            needs_peer_review=policy.needs_peer_review or change_request.kind == Kind.STANDARD,
        )
        if not missing and not peer_missing:
            continue
        state_before = _move(change_request, State.IN_REVIEW if peer_missing else State.IN_APPROVAL)
        change_request.policy = policy
        change_request.save(update_fields=["state", "policy", "updated_at"])
        notifications.change_request_waiting(change_request=change_request)
        audit_record(
            actor=actor,
            action=AuditAction.CHANGE_REQUEST_REOPENED,
            target=change_request,
            environment=policy.environment,
            data={
                "state_before": state_before,
                "state_after": change_request.state,
                "policy_version": policy.version,
                "missing_teams": [team.slug for team in missing],
                "peer_review_missing": peer_missing,
            },
            request=request,
        )
        reopened.append(change_request)
    return reopened


@transaction.atomic
def change_request_mark_deployed(
    *, change_request: ChangeRequest, deployment: Deployment, actor=None, request=None
) -> ChangeRequest:
    """Called by the deployment service when `deployment` of this change succeeded (rule 9).
    A normal change becomes deployed; an emergency change goes on to its retrospective review,
    due `retrospective_hours` after the deployment (rule 11). `actor` is whoever reported the
    deployment (None for the system)."""
    change_request = _lock(change_request)
    state_before = _move(change_request, State.DEPLOYED)
    if change_request.kind == Kind.EMERGENCY:
        policy = _policy(change_request.environment)
        _move(change_request, State.RETRO_REVIEW)
        deployed_at = deployment.succeeded_at or deployment.finished_at or timezone.now()
        change_request.retrospective_due_at = deployed_at + timedelta(
            hours=policy.retrospective_hours
        )
        change_request.policy = policy
    change_request.full_clean()
    change_request.save()
    audit_record(
        actor=actor,
        action=AuditAction.CHANGE_REQUEST_DEPLOYED,
        target=change_request,
        environment=change_request.environment,
        data={
            "deployment": deployment.pk,
            "state_before": state_before,
            "state_after": change_request.state,
            "retrospective_due_at": change_request.retrospective_due_at,
        },
        request=request,
    )
    if change_request.kind == Kind.STANDARD:
        template = change_request.standard_template
        audit_record(
            actor=actor,
            action=AuditAction.STANDARD_TEMPLATE_USED,
            target=template,
            environment=change_request.environment,
            data={
                "change_request": change_request.number,
                "deployment": deployment.pk,
                "uses": template.change_requests.filter(
                    kind=Kind.STANDARD, state__in=USED_STATES
                ).count(),
                "max_uses": template.max_uses,
            },
            request=request,
        )
    return change_request


@transaction.atomic
def change_request_mark_rolled_back(
    *, change_request: ChangeRequest, deployment: Deployment, actor=None, request=None
) -> ChangeRequest:
    """Called by the rollback service. A deployed normal change becomes rolled back; an
    emergency change keeps owing its retrospective, so its state stays and only the event (and
    `updated_at`) is recorded."""
    change_request = _lock(change_request)
    state_before = change_request.state
    if not (change_request.kind == Kind.EMERGENCY and state_before == State.RETRO_REVIEW):
        _move(change_request, State.ROLLED_BACK)
    change_request.save()
    audit_record(
        actor=actor,
        action=AuditAction.CHANGE_REQUEST_ROLLED_BACK,
        target=change_request,
        environment=change_request.environment,
        data={
            "rollback": deployment.pk,
            "state_before": state_before,
            "state_after": change_request.state,
        },
        request=request,
    )
    return change_request


@transaction.atomic
def change_request_retrospective_escalate(
    *, actor: AbstractBaseUser | None, change_request: ChangeRequest, now: datetime | None = None
) -> list:
    """Rule 11: an emergency change's retrospective near its deadline goes to the change managers,
    and again once past it; that first telling past the deadline is an audit event, so the trail
    shows an overdue review was escalated. Each stage is told once; returns who was told now."""
    change_request = _lock(change_request)
    now = now or timezone.now()
    due = change_request.retrospective_due_at
    if change_request.state != State.RETRO_REVIEW or due is None:
        raise Conflict(
            f"{change_request.number} owes no retrospective review; there is nothing to sign.",
            code="no_retrospective_due",
        )
    if now < due - RETROSPECTIVE_WARNING:
        raise Conflict(
            f"The retrospective of {change_request.number} is not due before "
            f"{due:%Y-%m-%d %H:%M}; wait until then.",
            code="retrospective_not_due",
        )
    overdue = due <= now
    told = notifications.retrospective_escalation(change_request=change_request, overdue=overdue)
    if told and overdue:
        audit_record(
            actor=actor,
            action=AuditAction.CHANGE_REQUEST_RETROSPECTIVE_ESCALATED,
            target=change_request,
            environment=change_request.environment,
            data={"due_at": due, "told": sorted(n.recipient.get_username() for n in told)},
        )
    return told
