"""Change requests mirrored as change records in ServiceNow or issues in Jira (issue 17).

The audit trail is the outbox. `change_tickets_claim` takes the change request events after the
"tickets" cursor and, in the same transaction, writes one `TicketTransition` per event and
ticket (unique: the idempotency key of the transition) holding the change as it stands, so a
crash or an outage between the two loses nothing and takes nothing twice.

`change_ticket_deliver` then brings one change's transitions to its ticket in the order of the
trail, never an update before its create: it leases the ticket, makes the calls outside any
transaction (a slow ticket system holds no lock), and records every exchange. A failure leaves
the transition pending with a back-off, or the wait a 429's Retry-After asked for; the periodic
sweep (integrations.tasks) hands due tickets to the workers again. Every call is idempotent
(integrations.tickets_systems), so an answer lost after the ticket system acted costs nothing:
the retry finds the record by its correlation instead of filing a second one.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import audit_record
from integrations.models import (
    ChangeTicket,
    TicketDeliveryAttempt,
    TicketSystem,
    TicketTransition,
    TransitionKind,
)
from integrations.outbox import claim_events
from integrations.tickets_http import Connection, TicketSystemError
from integrations.tickets_systems import Link, RecordGone, ticket_client
from releases.hooks import ExternalLink
from releases.models import ChangeRequest, Deployment, DeploymentKind, SignOffKind
from releases.permissions import Slot
from releases.services.gate import gate_evaluate
from releases.states import State

CONSUMER = "tickets"
# The change request events that move its ticket. Drafts have no ticket: a change is mirrored
# from its submission on.
TRANSITION_ACTIONS = (
    AuditAction.CHANGE_REQUEST_SUBMITTED,
    AuditAction.CHANGE_REQUEST_EDITED,
    AuditAction.CHANGE_REQUEST_SIGNED,
    AuditAction.SIGN_OFF_WITHDRAWN,
    AuditAction.CHANGE_REQUEST_REOPENED,
    AuditAction.CHANGE_REQUEST_CANCELLED,
    AuditAction.CHANGE_REQUEST_EXPIRED,
    AuditAction.CHANGE_REQUEST_DEPLOYED,
    AuditAction.CHANGE_REQUEST_ROLLED_BACK,
)
CHANGE_REQUEST_TYPE = "releases.changerequest"
# States in which the ticket is done: the change went out, or never will.
DONE = frozenset(
    {
        State.DEPLOYED,
        State.CLOSED,
        State.ROLLED_BACK,
        State.CANCELLED,
        State.REJECTED,
        State.EXPIRED,
    }
)
# States in which the gate's answer still says something about what comes next.
GATE_ASKED = frozenset(
    {
        State.DRAFT,
        State.IN_REVIEW,
        State.IN_APPROVAL,
        State.APPROVED,
        State.AWAITING_AUTHORISATION,
        State.AUTHORISED,
    }
)
FIRST_RETRY_SECONDS = 30
LONGEST_WAIT_SECONDS = 3600


def configured_system() -> str | None:
    """The ticket system Gatehouse mirrors change requests into, or None."""
    return settings.GATEHOUSE_TICKETS or None


def correlation_of(change_request: ChangeRequest) -> str:
    """The name both systems find the record by: `gatehouse-cr-42`."""
    return f"{settings.GATEHOUSE_TICKETS_PREFIX}-{change_request.number}".lower()


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def change_snapshot(change_request: ChangeRequest) -> dict:
    """The change request as its ticket shows it: content, exact build, state, the sign-offs
    that stand and, while it is not yet deployed, what the gate would answer now."""
    cr = ChangeRequest.objects.select_related(
        "model_version__model", "environment", "requester", "team"
    ).get(pk=change_request.pk)
    version = cr.model_version
    standing = cr.sign_offs.filter(voided_at__isnull=True).select_related("signer", "team")
    gate = None
    if cr.state in GATE_ASKED:
        answer = gate_evaluate(
            environment=cr.environment,
            model=version.model,
            version=version.version,
            change_request=cr,
        )
        gate = {"allowed": answer.allowed, "reasons": [r.as_dict() for r in answer.reasons]}
    rolled_back = Deployment.objects.filter(
        kind=DeploymentKind.ROLLBACK, rollback_of__change_request=cr
    ).exists()
    if cr.state in (State.CANCELLED, State.REJECTED, State.EXPIRED):
        outcome = "cancelled"
    elif cr.state == State.ROLLED_BACK or (rolled_back and cr.state in DONE):
        outcome = "unsuccessful"
    elif cr.state in DONE:
        outcome = "successful"
    else:
        outcome = ""
    return {
        "number": cr.number,
        "title": cr.title,
        "kind": cr.kind,
        "state": cr.state,
        "state_label": cr.get_state_display(),
        "done": cr.state in DONE,
        "outcome": outcome,
        "model": version.model.name,
        "version": version.version,
        "commit_sha": version.commit_sha,
        "artifact_sha256": version.artifact_sha256,
        "environment": cr.environment.name,
        "requester": cr.requester.get_username(),
        "team": cr.team.slug,
        "justification": cr.justification,
        "risk_impact": cr.risk_impact,
        "test_evidence": cr.test_evidence,
        "rollback_plan": cr.rollback_plan,
        "window_start": _iso(cr.window_start),
        "window_end": _iso(cr.window_end),
        "incident_ref": cr.incident_ref,
        "link": settings.PORTAL_BASE_URL + reverse("releases:change-request", args=[cr.number]),
        "sign_offs": [
            {
                "label": Slot(s.kind, s.team).label if s.team else s.get_kind_display(),
                "kind": s.kind,
                "team": s.team.slug if s.team else None,
                "signer": s.signer.get_username(),
                "decision": s.decision,
                "signed_at": _iso(s.signed_at),
            }
            for s in standing.order_by("signed_at", "id")
        ],
        "gate": gate,
    }


def _summary(event: AuditEvent) -> str:
    """One line for the transition: what happened, by whom, from which state to which."""
    data = event.data
    what = AuditAction(event.action).label
    if event.action == AuditAction.CHANGE_REQUEST_SIGNED:
        kind = dict(SignOffKind.choices).get(data.get("kind"), "Sign-off")
        team = f" for {data['team']}" if data.get("team") else ""
        what = f"{kind}{team}: {data.get('decision')}"
    line = f"{what} by {event.actor_name}"
    if data.get("state_after") and data.get("state_after") != data.get("state_before"):
        line += f" ({data.get('state_before')} → {data['state_after']})"
    return line[:300]


def _resolution(event: AuditEvent, change_request: ChangeRequest) -> str:
    """What the change came to, for the events that end it (or undo its release): the text of
    the resolution comment and the close notes."""
    data, who = event.data, event.actor_name
    when = f"{event.occurred_at.astimezone(UTC):%Y-%m-%d %H:%M UTC}"
    if event.action == AuditAction.CHANGE_REQUEST_DEPLOYED:
        deployment = Deployment.objects.filter(pk=data.get("deployment")).first()
        line = f"Deployed {change_request.model_version} to {change_request.environment.name}"
        line += f" on {when} by {deployment.started_by_name if deployment else who}."
        if deployment and deployment.pipeline_url:
            line += f" Pipeline: {deployment.pipeline_url}"
        if data.get("retrospective_due_at"):
            line += f" Retrospective review due by {data['retrospective_due_at']}."
        return line
    if event.action == AuditAction.CHANGE_REQUEST_ROLLED_BACK:
        rollback = Deployment.objects.filter(pk=data.get("rollback")).first()
        reason = f": {rollback.reason}" if rollback and rollback.reason else "."
        back = f" {rollback.model_version} is live again." if rollback else ""
        return f"Rolled back on {when} by {who}{reason}{back}"
    if event.action == AuditAction.CHANGE_REQUEST_CANCELLED:
        return f"Cancelled on {when} by {who}: {data.get('reason', '')}"
    if event.action == AuditAction.CHANGE_REQUEST_EXPIRED:
        return f"Expired: its window ended on {data.get('window_end')} unused."
    if event.action == AuditAction.CHANGE_REQUEST_SIGNED and data.get("state_after") in (
        State.REJECTED,
        State.CLOSED,
    ):
        if data["state_after"] == State.CLOSED:
            return f"Closed on {when}: the retrospective reviews are signed, the last by {who}."
        return f"Rejected on {when} by {who} for {data.get('team')}: {data.get('comment', '')}"
    return ""


def _opens_ticket(event: AuditEvent) -> bool:
    """A change is mirrored from its submission: a draft's edits or cancellation are not."""
    data = event.data
    if event.action in (AuditAction.CHANGE_REQUEST_SUBMITTED, AuditAction.CHANGE_REQUEST_EXPIRED):
        return True
    return State.DRAFT not in (data.get("state_before"), data.get("state_after"))


@transaction.atomic
def change_tickets_claim(*, limit: int = 200, now: datetime | None = None) -> int:
    """Take the next change request events from the trail into transitions for the
    configured system's tickets; returns how many events were taken (0 when unconfigured,
    and then the cursor does not move)."""
    system = configured_system()
    if system is None:
        return 0
    now = now or timezone.now()
    events = claim_events(consumer=CONSUMER, actions=TRANSITION_ACTIONS, limit=limit)
    ids = {int(e.object_id) for e in events if e.object_type == CHANGE_REQUEST_TYPE}
    change_requests = ChangeRequest.objects.select_related(
        "model_version__model", "environment"
    ).in_bulk(ids)
    tickets = {
        ticket.change_request_id: ticket
        for ticket in ChangeTicket.objects.filter(change_request__in=ids, system=system)
    }
    snapshots: dict[int, dict] = {}
    results: dict[int, list[str]] = {}
    for event in events:
        if event.object_type != CHANGE_REQUEST_TYPE:
            continue
        change_request = change_requests.get(int(event.object_id))
        if change_request is None:
            continue
        ticket = tickets.get(change_request.pk)
        kind = TransitionKind.UPDATE
        if ticket is None:
            if not _opens_ticket(event):
                continue
            ticket = tickets[change_request.pk] = ChangeTicket.objects.create(
                change_request=change_request, system=system
            )
            kind = TransitionKind.CREATE
        if change_request.pk not in snapshots:
            snapshots[change_request.pk] = change_snapshot(change_request)
            results[change_request.pk] = list(
                ticket.transitions.exclude(resolution="").values_list("resolution", flat=True)
            )
        resolution = _resolution(event, change_request)
        if resolution:
            results[change_request.pk].append(resolution)
        summary = _summary(event)
        TicketTransition.objects.create(
            ticket=ticket,
            event=event,
            kind=kind,
            summary=summary,
            resolution=resolution,
            change={
                **snapshots[change_request.pk],
                "transition": summary,
                "result_notes": "\n".join(results[change_request.pk]),
            },
            claimed_at=now,
            next_attempt_at=now,
        )
    return len(events)


def change_tickets_due(*, now: datetime | None = None) -> list[int]:
    """The tickets of the configured system with a transition due and no delivery under way."""
    system = configured_system()
    if system is None:
        return []
    now = now or timezone.now()
    return list(
        ChangeTicket.objects.filter(
            Q(leased_until__isnull=True) | Q(leased_until__lte=now),
            system=system,
            transitions__delivered_at__isnull=True,
            transitions__next_attempt_at__lte=now,
        )
        .distinct()
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _lease_seconds() -> float:
    # Longer than the most calls one transition makes (Jira's resolution: five) can take.
    return max(300.0, 10 * settings.GATEHOUSE_TICKETS_TIMEOUT)


@transaction.atomic
def _lease_next(ticket_id: int, now: datetime) -> TicketTransition | None:
    """The ticket's oldest pending transition if it is due and nobody is delivering this
    ticket; the ticket is then leased to the caller."""
    ticket = ChangeTicket.objects.select_for_update().filter(pk=ticket_id).first()
    if ticket is None or ticket.system != configured_system():
        return None
    if ticket.leased_until is not None and ticket.leased_until > now:
        return None
    transition = (
        ticket.transitions.select_related("event")
        .filter(delivered_at__isnull=True)
        .order_by("event_id")
        .first()
    )
    if transition is None or transition.next_attempt_at > now:
        return None
    ticket.leased_until = now + timedelta(seconds=_lease_seconds())
    ticket.save(update_fields=["leased_until"])
    transition.ticket = ticket
    return transition


@dataclass
class Outcome:
    link: Link | None = None
    found: bool = False
    gone: bool = False
    error: TicketSystemError | None = None


def _send(transition: TicketTransition, connection: Connection) -> Outcome:
    """Make the calls of one transition: find or file the record, update it (unless it was
    filed from this very state), then resolve it. No transaction is open here."""
    ticket = transition.ticket
    client = ticket_client(ticket.system, connection)
    correlation = correlation_of(ticket.change_request)
    outcome = Outcome()
    link = Link(ticket.external_id, ticket.reference, ticket.url) if ticket.external_id else None
    try:
        filed_now = False
        if link is None:
            link = client.find(correlation)
            outcome.found = link is not None
            if link is None:
                link = client.create(correlation, transition.change)
                filed_now = True
            outcome.link = link
        if not filed_now:
            client.update(link, correlation, transition.change)
        client.resolve(link, correlation, transition)
    except RecordGone as error:
        outcome.gone, outcome.error = True, error
    except TicketSystemError as error:
        outcome.error = error
    return outcome


def _wait(error: TicketSystemError, attempts: int) -> timedelta:
    """What a 429 (or a 503) asked for, else a back-off that doubles up to an hour."""
    if error.retry_after is not None:
        return timedelta(seconds=error.retry_after)
    seconds = FIRST_RETRY_SECONDS * 2 ** min(attempts - 1, 16)
    return timedelta(seconds=min(seconds, LONGEST_WAIT_SECONDS))


@transaction.atomic
def _record(
    transition_id: int, outcome: Outcome, exchanges: Sequence, now: datetime
) -> TicketTransition:
    """Write down what one delivery did: its exchanges, the link it found or made, and the
    transition delivered or waiting for its next attempt; the ticket's lease ends."""
    transition = TicketTransition.objects.select_for_update().get(pk=transition_id)
    ticket = ChangeTicket.objects.select_for_update().get(pk=transition.ticket_id)
    transition.attempts += 1
    TicketDeliveryAttempt.objects.bulk_create(
        TicketDeliveryAttempt(transition=transition, attempt=transition.attempts, **asdict(e))
        for e in exchanges
    )
    if outcome.link is not None and outcome.link.external_id != ticket.external_id:
        ticket.external_id = outcome.link.external_id
        ticket.reference = outcome.link.reference
        ticket.url = outcome.link.url
        ticket.linked_at = now
        change_request = ticket.change_request
        audit_record(
            actor=None,
            action=AuditAction.CHANGE_TICKET_LINKED,
            target=change_request,
            environment=change_request.environment,
            data={
                "system": ticket.system,
                "reference": ticket.reference,
                "external_id": ticket.external_id,
                "url": ticket.url,
                "found_existing": outcome.found,
            },
        )
    if outcome.gone:
        ticket.external_id = ticket.reference = ticket.url = ""
        ticket.linked_at = None
    if outcome.error is None:
        if transition.delivered_at is None:
            transition.delivered_at = now
            transition.last_error = ""
            ticket.last_synced = transition
            ticket.synced_at = now
    else:
        transition.last_error = outcome.error.detail[:2000]
        transition.next_attempt_at = now + (
            timedelta(0) if outcome.gone else _wait(outcome.error, transition.attempts)
        )
    transition.save()
    ticket.leased_until = None
    ticket.save()
    return transition


def change_ticket_deliver(*, ticket_id: int) -> int:
    """Bring one ticket's due transitions to the ticket system, oldest first, stopping at the
    first that fails; returns how many were delivered."""
    delivered = 0
    while (transition := _lease_next(ticket_id, timezone.now())) is not None:
        connection = Connection.configured()
        outcome = _send(transition, connection)
        _record(transition.pk, outcome, connection.exchanges, timezone.now())
        if outcome.error is not None:
            return delivered
        delivered += 1
    return delivered


def external_links_of_change_requests(
    change_requests: Sequence[ChangeRequest],
) -> dict[int, list[ExternalLink]]:
    """The releases hook: the linked tickets of these change requests, in one query."""
    links: dict[int, list[ExternalLink]] = {}
    tickets = ChangeTicket.objects.filter(
        change_request__in=[c.pk for c in change_requests]
    ).exclude(external_id="")
    for ticket in tickets.order_by("pk"):
        links.setdefault(ticket.change_request_id, []).append(
            ExternalLink(
                system=TicketSystem(ticket.system).label, reference=ticket.reference, url=ticket.url
            )
        )
    return links
