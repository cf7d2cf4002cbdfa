"""Who is told what about a change, and why. Called inside the services' transactions: the
notification rows commit with the change, and the mails go out after commit (portal.queue)."""

from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from audit.selectors import AUDITORS_GROUP
from portal.models import Membership, Team
from portal.notifications import notify
from portal.selectors import absences_covering
from releases.models import (
    ChangeRequest,
    ClusterReading,
    Deployment,
    ModelNotRunning,
    ReconciliationFinding,
    SignOff,
    SignOffKind,
    UnauthorisedChange,
)
from releases.selectors.policy import environment_policy_current
from releases.states import State

User = get_user_model()


def _link(change_request: ChangeRequest) -> str:
    return reverse("releases:change-request", kwargs={"number": change_request.number})


def _active_signers(change_request: ChangeRequest) -> set[int]:
    """Who signed, and the absent approvers a delegate signed for: one sign-off each."""
    signed = change_request.sign_offs.filter(voided_at__isnull=True)
    people = set()
    for signer, principal in signed.values_list("signer_id", "on_behalf_of_id"):
        people |= {signer, principal} - {None}
    return people


def _people(*, exclude: set[int], **membership_filter) -> QuerySet:
    user_ids = Membership.objects.filter(**membership_filter).values("user_id")
    return User.objects.filter(pk__in=user_ids, is_active=True).exclude(pk__in=exclude)


def _waiting_groups(cr: ChangeRequest) -> tuple[str, list[tuple[QuerySet, str]]]:
    """The step a change waits for, and who may sign it now (never the requester, never someone
    who signed already), grouped by why they may."""
    exclude = {cr.requester_id} | _active_signers(cr)
    if cr.state == State.IN_REVIEW:
        return "peer review", [
            (
                _people(exclude=exclude, team=cr.team),
                f"You are in {cr.team.name}, the requester's team.",
            )
        ]
    if cr.state == State.AWAITING_AUTHORISATION:
        return "emergency authorisation", [
            (
                _people(exclude=exclude, is_emergency_approver=True),
                "You are an emergency approver (change manager).",
            )
        ]
    if cr.state != State.IN_APPROVAL:
        return "", []
    policy = environment_policy_current(environment=cr.environment)
    signed_teams = set(
        cr.sign_offs.filter(voided_at__isnull=True, kind=SignOffKind.APPROVAL).values_list(
            "team_id", flat=True
        )
    )
    groups = []
    for team in policy.teams_for(cr):
        if team.pk in signed_teams:
            continue
        # First, so that a delegate is told why it is theirs (one notification per person).
        groups += _delegates(team, exclude=exclude)
        groups.append(
            (
                _people(exclude=exclude, team=team, is_approver=True),
                f"You approve for {team.name}, which {cr.environment.name} requires.",
            )
        )
    return "approval", groups


def _delegates(team: Team, *, exclude: set[int]) -> list[tuple[QuerySet, str]]:
    """The delegates of the approvers of `team` who are away today, each with whom they stand
    in for; not where the principal is the requester or signed already, and only approvers of
    the team (roles count now)."""
    principals = Membership.objects.filter(team=team, is_approver=True).values("user_id")
    absences = (
        absences_covering(day=timezone.localdate())
        .filter(team=team, person_id__in=principals)
        .exclude(person_id__in=exclude)
        .select_related("person")
    )
    return [
        (
            _people(exclude=exclude, team=team, is_approver=True).filter(pk=absence.delegate_id),
            f"You stand in for {_name(absence.person)}, an approver of {team.name} who is away "
            f"until {absence.ends_on:%Y-%m-%d}: you may sign as their delegate.",
        )
        for absence in absences
    ]


def change_request_waiting(*, change_request: ChangeRequest) -> None:
    """Tell everyone who may sign the next step of `change_request` that it waits for them."""
    cr = change_request
    step, groups = _waiting_groups(cr)
    for recipients, reason in groups:
        notify(
            recipients=recipients,
            key=f"cr:{cr.pk}:waiting:{cr.state}:{cr.content_digest[:12]}",
            subject=f"{cr.number} {cr.title} waits for your {step}",
            body=(
                f"{cr.requester.get_full_name() or cr.requester.get_username()} asks to deploy "
                f"{cr.model_version} to {cr.environment.name}."
            ),
            reason=reason,
            link=_link(cr),
        )


def change_request_decided(*, change_request: ChangeRequest, sign_off: SignOff) -> None:
    """Tell the requester about every decision on their change."""
    cr = change_request
    signer = sign_off.signer.get_full_name() or sign_off.signer.get_username()
    if sign_off.on_behalf_of is not None:
        signer += f" (delegate of {_name(sign_off.on_behalf_of)})"
    verb = "approved" if sign_off.decision == "approve" else "rejected"
    on_behalf = f" for {sign_off.team.name}" if sign_off.team else ""
    notify(
        recipients=[cr.requester],
        key=f"signoff:{sign_off.pk}",
        subject=f"{cr.number}: {signer} {verb}{on_behalf} ({sign_off.get_kind_display()})",
        body=f"{sign_off.comment or 'No comment.'}\nThe change is now {cr.get_state_display()}.",
        reason="You requested this change.",
        link=_link(cr),
    )


def _name(user) -> str:
    return user.get_full_name() or user.get_username()


def sign_off_withdrawn(*, change_request: ChangeRequest, sign_off: SignOff) -> None:
    """A signer took their sign-off back: tell the requester, the signers whose sign-offs stand,
    and, where the policy in force still asks for it, those who may now give it instead."""
    cr = change_request
    signer = sign_off.signer
    what = sign_off.get_kind_display().lower()
    if sign_off.kind == SignOffKind.APPROVAL:
        what = f"approval for {sign_off.team.name}"
    signers = _active_signers(cr)
    groups = [
        (User.objects.filter(pk=cr.requester_id), "You requested this change."),
        (User.objects.filter(pk__in=signers), "You signed this change."),
    ]
    exclude = {cr.requester_id, signer.pk} | signers
    policy = environment_policy_current(environment=cr.environment)
    if sign_off.kind == SignOffKind.PEER_REVIEW and policy and policy.needs_peer_review:
        groups.append(
            (
                _people(exclude=exclude, team=cr.team),
                f"You are in {cr.team.name}, the requester's team.",
            )
        )
    elif policy and sign_off.team in policy.approval_teams.all():
        groups.append(
            (
                _people(exclude=exclude, team=sign_off.team, is_approver=True),
                f"You approve for {sign_off.team.name}, which {cr.environment.name} requires.",
            )
        )
    for recipients, reason in groups:
        notify(
            recipients=recipients.exclude(pk=signer.pk),
            key=f"signoff:{sign_off.pk}:withdrawn",
            subject=f"{cr.number}: {_name(signer)} withdrew their {what}",
            body=(
                f"{_name(signer)} withdrew their {what}: {sign_off.voided_reason}\n"
                f"The change is now {cr.get_state_display()}."
            ),
            reason=reason,
            link=_link(cr),
        )


def people_waited_for(*, change_request: ChangeRequest) -> list[tuple[QuerySet, str]]:
    """Who the change waits for now, with why: read before it moves on."""
    return _waiting_groups(change_request)[1]


def change_request_cancelled(
    *,
    change_request: ChangeRequest,
    actor,
    reason: str,
    waited_for: list[tuple[QuerySet, str]],
) -> None:
    """Tell the requester (when someone else cancelled), the signers and those the change was
    waiting for that it is called off, and why."""
    cr = change_request
    groups = [
        (User.objects.filter(pk=cr.requester_id), "You requested this change."),
        (User.objects.filter(pk__in=_active_signers(cr)), "You signed this change."),
        *waited_for,
    ]
    for recipients, why in groups:
        notify(
            recipients=recipients.exclude(pk=actor.pk),
            key=f"cr:{cr.pk}:cancelled",
            subject=f"{cr.number} {cr.title} was cancelled by {_name(actor)}",
            body=f"Reason: {reason}",
            reason=why,
            link=_link(cr),
        )


def _owner_and_approvers(deployment: Deployment) -> list[tuple[QuerySet, str]]:
    groups = []
    if deployment.change_request_id:
        groups.append(
            (
                User.objects.filter(pk=deployment.change_request.requester_id),
                "You requested the change behind this deployment.",
            )
        )
    policy = environment_policy_current(environment=deployment.environment)
    if policy is not None:
        for team in policy.approval_teams.all():
            groups.append(
                (
                    _people(exclude=set(), team=team, is_approver=True),
                    f"You approve for {team.name} in {deployment.environment.name}.",
                )
            )
    owners = _people(exclude=set(), team_id=deployment.model.owner_team_id)
    groups.append(
        (owners, f"Your team {deployment.model.owner_team.name} owns {deployment.model}.")
    )
    return groups


def deployment_failed(*, deployment: Deployment) -> None:
    link = reverse("releases:environment", kwargs={"name": deployment.environment.name})
    for recipients, reason in _owner_and_approvers(deployment):
        notify(
            recipients=recipients,
            key=f"deployment:{deployment.pk}:failed",
            subject=f"Deployment of {deployment.model_version} to {deployment.environment} failed",
            body=deployment.detail or "The pipeline reported a failure.",
            reason=reason,
            link=link,
        )


def deployment_unhealthy(*, deployment: Deployment, since: datetime, detail: str) -> None:
    link = reverse("releases:environment", kwargs={"name": deployment.environment.name})
    for recipients, reason in _owner_and_approvers(deployment):
        notify(
            recipients=recipients,
            key=f"deployment:{deployment.pk}:down:{since:%Y%m%d%H%M}",
            subject=f"{deployment.model_version} in {deployment.environment} is not healthy",
            body=detail or "The health endpoint did not answer as expected.",
            reason=reason,
            link=link,
        )


def _environment_link(environment) -> str:
    return reverse("releases:environment", kwargs={"name": environment.name})


def _outage_told(*, outage: ModelNotRunning, stage: str, subject: str, body: str) -> list:
    told = []
    for recipients, reason in _owner_and_approvers(outage.deployment):
        told += notify(
            recipients=recipients,
            key=f"deployment:{outage.deployment_id}:{stage}:{outage.since.isoformat()}",
            subject=subject,
            body=body,
            reason=reason,
            link=_environment_link(outage.environment),
        )
    return told


def model_not_running(*, outage: ModelNotRunning, namespace: str) -> list:
    """A live model that no workload serves is an outage or a removal the ledger does not know:
    the model's owners and the environment's approvers hear it once per outage."""
    built = outage.deployment.model_version
    return _outage_told(
        outage=outage,
        stage="not-running",
        subject=f"{outage.model} is not running in {outage.environment}",
        body=(
            f"The ledger says {built} ({built.artifact_sha256[:12]}…) is live in "
            f"{outage.environment.name}, but no workload of namespace {namespace} serves "
            f"{outage.model} since {outage.since:%Y-%m-%d %H:%M %Z}."
        ),
    )


def model_running_again(*, outage: ModelNotRunning, namespace: str, now: datetime) -> list:
    """Those told of the outage hear that it is over."""
    return _outage_told(
        outage=outage,
        stage="running-again",
        subject=f"{outage.model} is running again in {outage.environment}",
        body=(
            f"A workload of namespace {namespace} serves {outage.model} again since "
            f"{now:%Y-%m-%d %H:%M %Z}; none did from {outage.since:%Y-%m-%d %H:%M %Z}."
        ),
    )


def _platform_operations_told(
    *, reading: ClusterReading, stage: str, since: datetime, subject: str, body: str
) -> list:
    return notify(
        recipients=_people(exclude=set(), team__slug=settings.GATEHOUSE_PLATFORM_TEAM),
        key=f"cluster:{reading.pk}:{stage}:{since.isoformat()}",
        subject=subject,
        body=body,
        reason="You are in Platform Operations, who run the clusters.",
        link=_environment_link(reading.environment),
    )


def cluster_unreachable(*, reading: ClusterReading) -> list:
    """Platform Operations hear once per outage that a namespace cannot be read: until it can,
    nothing that runs there is compared with the ledger."""
    return _platform_operations_told(
        reading=reading,
        stage="unreachable",
        since=reading.failing_since,
        subject=f"The cluster namespace of {reading.environment.name} cannot be read",
        body=(
            f"Reading namespace {reading.namespace} failed: {reading.error}\n"
            "Until it is read again, what runs there is not compared with the ledger."
        ),
    )


def cluster_readable_again(*, reading: ClusterReading, failing_since: datetime) -> list:
    return _platform_operations_told(
        reading=reading,
        stage="readable-again",
        since=failing_since,
        subject=f"The cluster namespace of {reading.environment.name} is read again",
        body=(
            f"Namespace {reading.namespace} was read at {reading.succeeded_at:%Y-%m-%d %H:%M %Z}"
            f" after failing since {failing_since:%Y-%m-%d %H:%M %Z}."
        ),
    )


def _witness(flag: UnauthorisedChange) -> str:
    if flag.workload_observation_id:
        observed = flag.workload_observation
        return f"the cluster shows {observed.kind} {observed.namespace}/{observed.workload} serving"
    if flag.batch_run_id:
        return f"batch job {flag.batch_run.job_id} attested"
    if flag.observed_by:
        return f"{flag.observed_by}, which is"
    return "the health endpoint reports"


def unauthorised_change(*, flag: UnauthorisedChange, escalated: bool = False) -> list:
    """Rule 14: a digest the ledger did not put there reaches the model's owner team, the
    environment's approvers and the change managers at once, and again, escalated, while it
    stays unreviewed. Each stage is told once."""
    deployment = flag.deployment
    groups = [
        *_owner_and_approvers(deployment),
        (_people(exclude=set(), is_emergency_approver=True), "You are a change manager."),
    ]
    stage = "escalated" if escalated else "flagged"
    what = f"{flag.model.name} in {flag.environment.name} serves {flag.reported_sha256[:12]}…"
    told = []
    for recipients, reason in groups:
        told += notify(
            recipients=recipients,
            key=f"unauthorised:{flag.pk}:{stage}",
            subject=(f"{'STILL UNREVIEWED: ' if escalated else ''}Unauthorised change: {what}"),
            body=(
                f"The ledger put {flag.expected_sha256[:12]}… there; {_witness(flag)} "
                f"{flag.reported_sha256[:12]}…. An approver of {flag.environment.name} reviews "
                "the flag on the environment page."
            ),
            reason=reason,
            link=reverse("releases:environment", kwargs={"name": flag.environment.name}),
        )
    return told


def retrospective_escalation(*, change_request: ChangeRequest, overdue: bool) -> list:
    """Escalate an emergency change's retrospective to the change managers, once when it is
    near its deadline and once when it is past it."""
    cr = change_request
    stage = "overdue" if overdue else "due-soon"
    due = f"{cr.retrospective_due_at:%Y-%m-%d %H:%M %Z}"
    return notify(
        recipients=_people(exclude=set(), is_emergency_approver=True),
        key=f"cr:{cr.pk}:retrospective:{stage}",
        subject=(
            f"{cr.number}: retrospective review {'OVERDUE' if overdue else 'due soon'} ({due})"
        ),
        body=f"The emergency change {cr.number} {cr.title} still lacks retrospective sign-offs.",
        reason="You are an emergency approver (change manager).",
        link=_link(cr),
    )


def sign_off_reminder(*, change_request: ChangeRequest, day: str) -> None:
    """The daily nudge, once per day, for a change that has waited more than a day."""
    cr = change_request
    step, groups = _waiting_groups(cr)
    for recipients, reason in groups:
        notify(
            recipients=recipients,
            key=f"cr:{cr.pk}:reminder:{day}",
            subject=f"Reminder: {cr.number} {cr.title} still waits for your {step}",
            body=f"It has waited since {cr.submitted_at:%Y-%m-%d %H:%M %Z}.",
            reason=reason,
            link=_link(cr),
        )


def reconciliation_finding(*, finding: ReconciliationFinding) -> list:
    """Rule 17: a row the audit trail does not explain reaches the change managers and the
    auditors, once per finding."""
    auditors = User.objects.filter(groups__name=AUDITORS_GROUP, is_active=True)
    groups = [
        (_people(exclude=set(), is_emergency_approver=True), "You are a change manager."),
        (auditors, "You are an auditor."),
    ]
    where = finding.change_request.number if finding.change_request else finding.object_type
    link = _link(finding.change_request) if finding.change_request else reverse("dashboard")
    told = []
    for recipients, reason in groups:
        told += notify(
            recipients=recipients,
            key=f"reconciliation:{finding.pk}",
            subject=f"Record not explained by the audit trail: {where}",
            body=(
                f"{finding.object_type} {finding.object_id}, field {finding.field}: the audit "
                f"trail says {finding.expected}, the database holds {finding.found}. Someone "
                "changed the table without going through Gatehouse; the gate refuses the change "
                "request it concerns until the row is explained again."
            ),
            reason=reason,
            link=link,
        )
    return told
