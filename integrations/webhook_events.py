"""What an audit event says to people, and how each kind of endpoint is told.

The trail says what happened ("change_request.signed", with its data); a message says it in the
users' words ("CR-42 fraud-score 2.0 to prod waits for Model Risk") with a link to the change.
Who a change waits for is read from releases (`open_slots`, the same reckoning the change page
and the sign-off services use) when the message is made, a few seconds after the event, under
the policy in force: if the change has moved on since, the message says where it is now.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse

from audit.actions import AuditAction
from audit.chain import format_timestamp
from audit.models import AuditEvent
from integrations.models import WebhookEventType, WebhookKind
from releases.models import ChangeRequest, ClusterReading, Deployment, SignOff, SignOffKind
from releases.permissions import Slot, open_slots
from releases.selectors.policy import environment_policy_current
from releases.states import Kind, State

T = WebhookEventType

# The audit actions the fan-out reads; anything else on the trail is no message.
SOURCE_ACTIONS = frozenset(
    {
        AuditAction.CHANGE_REQUEST_SUBMITTED,
        AuditAction.CHANGE_REQUEST_SIGNED,
        AuditAction.SIGN_OFF_WITHDRAWN,
        AuditAction.CHANGE_REQUEST_REOPENED,
        AuditAction.CHANGE_REQUEST_CANCELLED,
        AuditAction.CHANGE_REQUEST_EXPIRED,
        AuditAction.CHANGE_REQUEST_DEPLOYED,
        AuditAction.CHANGE_REQUEST_RETROSPECTIVE_ESCALATED,
        AuditAction.DEPLOYMENT_FAILED,
        AuditAction.DEPLOYMENT_ROLLED_BACK,
        AuditAction.DEPLOYMENT_UNAUTHORISED_CHANGE_DETECTED,
        AuditAction.DEPLOYMENT_UNAUTHORISED_CHANGE_ESCALATED,
        AuditAction.RUNTIME_NOT_RUNNING,
        AuditAction.RUNTIME_RUNNING_AGAIN,
        AuditAction.CLUSTER_UNREACHABLE,
        AuditAction.CLUSTER_READABLE_AGAIN,
    }
)
WAITING_STATES = frozenset(
    {State.IN_REVIEW, State.IN_APPROVAL, State.AWAITING_AUTHORISATION, State.RETRO_REVIEW}
)
DONE_STATES = frozenset({State.APPROVED, State.AUTHORISED})


def event_types(event: AuditEvent) -> list[str]:
    """The webhook types `event` is, the event's own first and "waiting" last. A subscription
    gets the event once, under the first of these it asked for."""
    data, action = event.data, event.action
    after = data.get("state_after")
    waiting = [T.CHANGE_REQUEST_WAITING] if after in WAITING_STATES else []
    if action == AuditAction.CHANGE_REQUEST_SUBMITTED:
        own = [T.EMERGENCY_SUBMITTED] if after == State.AWAITING_AUTHORISATION else []
        done = [T.CHANGE_REQUEST_APPROVED] if after in DONE_STATES else []
        return [*own, T.CHANGE_REQUEST_SUBMITTED, *done, *waiting]
    if action == AuditAction.CHANGE_REQUEST_SIGNED:
        if data.get("decision") == "reject":
            return [T.CHANGE_REQUEST_REJECTED, T.CHANGE_REQUEST_SIGNED]
        done = [T.CHANGE_REQUEST_APPROVED] if after in DONE_STATES else []
        return [*done, T.CHANGE_REQUEST_SIGNED, *waiting]
    if action == AuditAction.SIGN_OFF_WITHDRAWN:
        return [T.SIGN_OFF_WITHDRAWN, *waiting]
    return {
        AuditAction.CHANGE_REQUEST_REOPENED: waiting,
        AuditAction.CHANGE_REQUEST_CANCELLED: [T.CHANGE_REQUEST_CANCELLED],
        AuditAction.CHANGE_REQUEST_EXPIRED: [T.CHANGE_REQUEST_EXPIRED],
        AuditAction.CHANGE_REQUEST_DEPLOYED: [T.CHANGE_REQUEST_DEPLOYED],
        AuditAction.CHANGE_REQUEST_RETROSPECTIVE_ESCALATED: [T.RETROSPECTIVE_ESCALATED],
        AuditAction.DEPLOYMENT_FAILED: [T.DEPLOYMENT_FAILED],
        AuditAction.DEPLOYMENT_ROLLED_BACK: [T.DEPLOYMENT_ROLLED_BACK],
        AuditAction.DEPLOYMENT_UNAUTHORISED_CHANGE_DETECTED: [T.UNAUTHORISED_CHANGE],
        AuditAction.DEPLOYMENT_UNAUTHORISED_CHANGE_ESCALATED: [T.UNAUTHORISED_CHANGE],
        AuditAction.RUNTIME_NOT_RUNNING: [T.RUNTIME_NOT_RUNNING],
        AuditAction.RUNTIME_RUNNING_AGAIN: [T.RUNTIME_RUNNING_AGAIN],
        AuditAction.CLUSTER_UNREACHABLE: [T.CLUSTER_UNREACHABLE],
        AuditAction.CLUSTER_READABLE_AGAIN: [T.CLUSTER_READABLE_AGAIN],
    }.get(action, [])


@dataclass
class Message:
    """One event in words, for every kind of endpoint."""

    text: str
    link: str
    link_label: str
    occurred_at: datetime
    facts: list[tuple[str, str]] = field(default_factory=list)
    data: dict = field(default_factory=dict)


def absolute(path: str) -> str:
    return f"{settings.PORTAL_BASE_URL}{path}"


def _name(user) -> str:
    return user.get_full_name() or user.get_username()


def _slot_label(slot: Slot) -> str:
    if slot.kind == SignOffKind.PEER_REVIEW:
        return f"a peer review by {slot.team.name}"
    if slot.kind == SignOffKind.EMERGENCY_AUTHORISATION:
        return "an emergency approver"
    if slot.kind == SignOffKind.RETROSPECTIVE:
        return f"a retrospective by {slot.team.name}"
    return slot.team.name


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def waiting_for(change_request: ChangeRequest) -> list[str]:
    """Whose signature the change waits for now (approval teams by name)."""
    policy = environment_policy_current(environment=change_request.environment)
    teams = policy.teams_for(change_request) if policy else []
    standing = change_request.sign_offs.filter(voided_at__isnull=True).select_related("team")
    return [_slot_label(slot) for slot in open_slots(change_request, teams, list(standing))]


def _change_summary(cr: ChangeRequest) -> str:
    return f"{cr.number} {cr.model_version} to {cr.environment.name}"


def _change_facts(cr: ChangeRequest) -> list[tuple[str, str]]:
    return [
        ("Change", f"{cr.number} {cr.title}"),
        ("Build", str(cr.model_version)),
        ("Environment", cr.environment.name),
        ("Requested by", f"{_name(cr.requester)} ({cr.team.name})"),
        ("State", cr.get_state_display()),
    ]


def _change_data(cr: ChangeRequest) -> dict:
    return {
        "number": cr.number,
        "title": cr.title,
        "kind": cr.kind,
        "state": cr.state,
        "model": cr.model_version.model.name,
        "version": cr.model_version.version,
        "environment": cr.environment.name,
        "requester": cr.requester.get_username(),
        "team": cr.team.slug,
        "url": absolute(reverse("releases:change-request", kwargs={"number": cr.number})),
    }


def _where_now(cr: ChangeRequest, state_then: str | None) -> tuple[str, list[str]]:
    """Who the change waits for, or where it is: "now" when it has moved on since the event."""
    moved = state_then is not None and cr.state != state_then
    if cr.state in WAITING_STATES:
        waits = waiting_for(cr)
        if waits:
            return f"{'now ' if moved else ''}waits for {_and(waits)}", waits
    if moved:
        return f"is now {cr.get_state_display().lower()}", []
    return "", []


def _signer_text(data: dict) -> tuple[str, str]:
    sign_off = (
        SignOff.objects.select_related("signer", "team").filter(pk=data.get("sign_off")).first()
    )
    if sign_off is None:
        return "someone", ""
    if sign_off.kind == SignOffKind.APPROVAL:
        what = f"for {sign_off.team.name}"
    elif sign_off.kind == SignOffKind.PEER_REVIEW:
        what = "as peer reviewer"
    else:
        what = f"({sign_off.get_kind_display().lower()})"
    return _name(sign_off.signer), what


def _change_text(event: AuditEvent, cr: ChangeRequest) -> tuple[str, list[str]]:
    data, action = event.data, event.action
    subject = _change_summary(cr)
    now, waits = _where_now(cr, data.get("state_after"))
    then = f"; it {now}" if now else ""
    if action == AuditAction.CHANGE_REQUEST_SUBMITTED:
        if cr.kind == Kind.EMERGENCY:
            return f"Emergency change {subject} (incident {cr.incident_ref}){then}", waits
        return f"{subject} was submitted by {_name(cr.requester)}{then}", waits
    if action == AuditAction.CHANGE_REQUEST_SIGNED:
        signer, what = _signer_text(data)
        if data.get("decision") == "reject":
            comment = f": {data['comment']}" if data.get("comment") else ""
            return f"{subject} was rejected by {signer} {what}{comment}", waits
        if data.get("state_after") in DONE_STATES:
            state = "authorised" if cr.kind == Kind.EMERGENCY else "approved"
            return f"{subject} is {state}: {signer} signed {what}", waits
        return f"{subject}: {signer} signed {what}{then}", waits
    if action == AuditAction.SIGN_OFF_WITHDRAWN:
        return f"{subject}: {event.actor_name} withdrew a sign-off ({data['reason']}){then}", waits
    if action == AuditAction.CHANGE_REQUEST_REOPENED:
        return f"{subject} needs more signatures under a new policy{then}", waits
    if action == AuditAction.CHANGE_REQUEST_CANCELLED:
        return f"{subject} was cancelled by {event.actor_name}: {data['reason']}", []
    if action == AuditAction.CHANGE_REQUEST_EXPIRED:
        return f"{subject} expired: its window ended unused", []
    if action == AuditAction.CHANGE_REQUEST_DEPLOYED:
        return f"{subject} is deployed", []
    return (
        f"{subject}: the emergency change's retrospective review is due "
        f"{data.get('due_at', '')} and still lacks signatures{then}",
        waits,
    )


def _deployment_message(event: AuditEvent, deployment: Deployment) -> tuple[str, dict]:
    data, action = event.data, event.action
    where = f"{deployment.model.name} in {deployment.environment.name}"
    under = f" ({deployment.change_request.number})" if deployment.change_request else ""
    facts = {
        "id": deployment.pk,
        "model": deployment.model.name,
        "version": deployment.model_version.version,
        "environment": deployment.environment.name,
        "status": deployment.status,
    }
    if action == AuditAction.DEPLOYMENT_FAILED:
        detail = f": {data['detail']}" if data.get("detail") else ""
        text = f"Deployment of {deployment.model_version} to {deployment.environment.name}"
        return f"{text}{under} failed{detail}", facts
    if action == AuditAction.DEPLOYMENT_ROLLED_BACK:
        facts.update(from_version=data["from_version"], reason=data["reason"])
        return (
            f"{where} was rolled back from {data['from_version']} to {data['to_version']} by "
            f"{event.actor_name}: {data['reason']}",
            facts,
        )
    if action == AuditAction.RUNTIME_NOT_RUNNING:
        facts.update(namespace=data["namespace"], since=data["since"])
        return (
            f"{where} is not running: no workload of namespace {data['namespace']} serves "
            f"{deployment.model_version} since {data['since']}",
            facts,
        )
    if action == AuditAction.RUNTIME_RUNNING_AGAIN:
        facts.update(namespace=data["namespace"], not_running_since=data["not_running_since"])
        return (
            f"{where} is running again in namespace {data['namespace']}, not running since "
            f"{data['not_running_since']}",
            facts,
        )
    facts.update(expected_sha256=data.get("expected_sha256"))
    facts.update(reported_sha256=data.get("reported_sha256"))
    escalated = action == AuditAction.DEPLOYMENT_UNAUTHORISED_CHANGE_ESCALATED
    prefix = "STILL UNREVIEWED: " if escalated else ""
    reported = (data.get("reported_sha256") or "")[:12]
    return f"{prefix}Unauthorised change: {where} serves {reported}…", facts


def _cluster_message(event: AuditEvent, common: dict) -> Message:
    """From the event alone: the reading row has moved on since, the event says what was."""
    data = event.data
    where = f"The cluster namespace {data['namespace']} of {event.environment}"
    if event.action == AuditAction.CLUSTER_UNREACHABLE:
        text = f"{where} cannot be read: {data['error']}"
    else:
        text = f"{where} is read again, after failing since {data['failing_since']}"
    link = absolute(reverse("releases:environment", kwargs={"name": event.environment}))
    return Message(
        text=text,
        link=link,
        link_label=f"Open {event.environment}",
        occurred_at=event.occurred_at,
        facts=[("Environment", event.environment), ("Namespace", data["namespace"])],
        data={"summary": text, "url": link, **common, "cluster": data},
    )


def message_for(event: AuditEvent) -> Message | None:
    """The message `event` makes, or None when what it speaks of is gone."""
    common = {
        "actor": event.actor_name,
        "environment": event.environment,
        "audit_event": {"seq": event.seq, "action": event.action, "hash": event.hash},
    }
    if event.object_type == ChangeRequest._meta.label_lower:
        cr = (
            ChangeRequest.objects.select_related(
                "model_version__model", "environment", "requester", "team"
            )
            .filter(pk=event.object_id)
            .first()
        )
        if cr is None:
            return None
        text, waits = _change_text(event, cr)
        link = _change_data(cr)["url"]
        return Message(
            text=text,
            link=link,
            link_label="Sign" if waits else f"Open {cr.number}",
            occurred_at=event.occurred_at,
            facts=_change_facts(cr),
            data={
                "summary": text,
                "url": link,
                **common,
                "change_request": _change_data(cr),
                "waiting_for": waits,
            },
        )
    if event.object_type == ClusterReading._meta.label_lower:
        return _cluster_message(event, common)
    deployment = (
        Deployment.objects.select_related(
            "model", "model_version__model", "environment", "change_request"
        )
        .filter(pk=event.object_id)
        .first()
        if event.object_type == Deployment._meta.label_lower
        else None
    )
    if deployment is None:
        return None
    text, facts = _deployment_message(event, deployment)
    link = absolute(reverse("releases:deployment", kwargs={"pk": deployment.pk}))
    cr = deployment.change_request
    return Message(
        text=text,
        link=link,
        link_label="Open the deployment",
        occurred_at=event.occurred_at,
        facts=[
            ("Build", str(deployment.model_version)),
            ("Environment", deployment.environment.name),
            *([("Change", f"{cr.number} {cr.title}")] if cr else []),
        ],
        data={
            "summary": text,
            "url": link,
            **common,
            "deployment": facts,
            "change_request": _change_data(cr) if cr else None,
        },
    )


def message_for_test(*, subscription_name: str, actor, at: datetime) -> Message:
    text = f"Test message from Gatehouse for the subscription '{subscription_name}'"
    link = absolute(reverse("integrations:webhooks"))
    return Message(
        text=text,
        link=link,
        link_label="Open the webhooks",
        occurred_at=at,
        facts=[("Sent by", _name(actor) if isinstance(actor, get_user_model()) else str(actor))],
        data={"summary": text, "url": link, "subscription": subscription_name},
    )


def _slack_escape(text: str) -> str:
    """Slack reads <…> as links and mentions (<!channel>); a title must not ping anyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def teams_card(message: Message) -> dict:
    """An Adaptive Card in the message envelope that Teams incoming webhooks and Workflows
    ("post to a channel when a webhook request is received") accept."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {
                            "type": "TextBlock",
                            "text": message.text,
                            "wrap": True,
                            "weight": "Bolder",
                            "size": "Medium",
                        },
                        {
                            "type": "FactSet",
                            "facts": [
                                {"title": title, "value": value} for title, value in message.facts
                            ],
                        },
                    ],
                    "actions": [
                        {"type": "Action.OpenUrl", "title": message.link_label, "url": message.link}
                    ],
                },
            }
        ],
    }


def slack_blocks(message: Message) -> dict:
    text = _slack_escape(message.text)[:2900]
    facts = " · ".join(f"*{title}:* {_slack_escape(value)}" for title, value in message.facts)
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": facts[:2900] or " "}]},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": message.link_label},
                        "url": message.link,
                    }
                ],
            },
        ],
    }


def standard_body(message: Message, event_type: str) -> dict:
    return {
        "type": event_type,
        "timestamp": format_timestamp(message.occurred_at),
        "data": message.data,
    }


def render(kind: str, message: Message, event_type: str) -> str:
    """The body as sent: compact JSON, the same bytes on every attempt."""
    if kind == WebhookKind.TEAMS:
        payload = teams_card(message)
    elif kind == WebhookKind.SLACK:
        payload = slack_blocks(message)
    else:
        payload = standard_body(message, event_type)
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str)
