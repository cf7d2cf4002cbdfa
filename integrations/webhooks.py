"""Chat and webhook subscriptions: who may manage them, and every change to them, audited.

A subscription makes the portal send requests to a URL of the subscriber's choosing, inside
the bank's network, and tells that URL about every change in the environments it names. So
administrators (staff) manage them all, and a service token only with the `webhooks:write`
scope and only for the subscriptions of its own team and of the teams granted to it (rule 15):
a leaked CI token cannot read another team's subscriptions, silence them or rotate their
secrets, and a token without the scope cannot point the portal anywhere. Other people manage
none; they see the changes themselves on the portal's pages.

The signing secret of a Standard Webhooks subscription is returned once, by the service that
makes it (creation or rotation), and never shown again (integrations.webhook_secrets).
"""

import ipaddress
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import audit_record, describe_actor
from integrations.models import (
    TEST_EVENT_TYPE,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEventType,
    WebhookKind,
    WebhookSubscription,
)
from integrations.webhook_delivery import message_id_new, webhook_delivery_attempt
from integrations.webhook_events import message_for_test, render
from integrations.webhook_secrets import secret_generate
from organisation.hooks import known_environment_names
from organisation.services import environment_names_check
from portal.authentication import GRANT_SCOPE, is_service_account
from portal.exceptions import Conflict, NotFound, RuleDenied
from portal.models import Scope, Team

LOCAL_HOSTS = frozenset({"localhost"})


def manage_denial(actor, *, team: Team | None) -> RuleDenied | None:
    """Why `actor` may not manage a subscription of `team` (None: an administrators' one)."""
    if actor is None:  # the system: the demo, migrations, the shell
        return None
    if is_service_account(actor):
        if not actor.has_scope(Scope.WEBHOOKS_WRITE):
            return RuleDenied(
                f"This token lacks the '{Scope.WEBHOOKS_WRITE}' scope that managing webhooks "
                f"needs. {GRANT_SCOPE}",
                code="missing_scope",
            )
        if team is None or not actor.acts_for_team(team.pk):
            return RuleDenied(
                f"The token of '{actor.name}' manages only the webhooks of its teams; name one "
                "of them as the subscription's team.",
                code="token_wrong_team",
            )
        return None
    if getattr(actor, "is_staff", False) and actor.is_active:
        return None
    return RuleDenied(
        "Webhooks are managed by administrators: ask one to add or change the subscription.",
        code="webhooks_admin_only",
    )


def may_manage(actor, *, team: Team | None = None) -> bool:
    return manage_denial(actor, team=team) is None


def subscriptions_for(actor) -> QuerySet[WebhookSubscription]:
    """The subscriptions `actor` may see and manage: all for administrators, those of its teams
    for a token with the scope, none for anyone else."""
    subscriptions = WebhookSubscription.objects.select_related("team")
    if is_service_account(actor):
        if not actor.has_scope(Scope.WEBHOOKS_WRITE):
            return subscriptions.none()
        teams = [actor.team_id, *actor.granted_teams.values_list("pk", flat=True)]
        return subscriptions.filter(team_id__in=teams)
    if may_manage(actor):
        return subscriptions
    return subscriptions.none()


def url_check(url: str) -> str:
    """https anywhere; plain http only to this machine, and only where the setting allows it
    (a local relay, the tests). Credentials in the URL's user part are refused: they would be
    sent in the clear to whoever the host is."""
    url = url.strip()
    problem = None
    try:
        URLValidator(schemes=["https", "http"])(url)
        parts = urlsplit(url)
    except ValidationError:
        problem = "Enter a full https:// URL."
    else:
        if parts.username or parts.password:
            problem = "Put no user name or password in the URL."
        elif parts.scheme == "http" and not (
            settings.WEBHOOK_ALLOW_LOCAL_HTTP and _is_local(parts.hostname or "")
        ):
            problem = (
                "The URL must use https (plain http is allowed only to this machine, and only "
                "when GATEHOUSE_WEBHOOKS_ALLOW_LOCAL_HTTP is on)."
            )
    if problem or len(url) > 2000:
        raise ValidationError({"url": problem or "At most 2,000 characters."})
    return url


def _is_local(host: str) -> bool:
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_hint(url: str) -> str:
    """What pages, the API and the trail show of a URL: its scheme and host, never the path
    (a Teams or Slack URL is a credential there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…"


def _event_types_check(event_types) -> list[str]:
    chosen = sorted(set(event_types))
    unknown = [name for name in chosen if name not in WebhookEventType.values]
    if unknown or not chosen:
        raise ValidationError(
            {
                "event_types": f"Unknown event types: {', '.join(unknown)}."
                if unknown
                else "Choose at least one event type."
            }
        )
    return chosen


def _record(subscription: WebhookSubscription) -> dict:
    """What the trail keeps of a subscription: never its URL's path or its secret."""
    return {
        "name": subscription.name,
        "kind": subscription.kind,
        "url": subscription.url_hint,
        "event_types": subscription.event_types,
        "environments": subscription.environments,
        "team": subscription.team.slug if subscription.team else None,
        "is_active": subscription.is_active,
    }


@dataclass
class IssuedSubscription:
    """A subscription and its signing secret, which exists in clear only in this answer."""

    subscription: WebhookSubscription
    secret: str | None


@transaction.atomic
def webhook_subscription_create(
    *,
    actor,
    name: str,
    kind: str,
    url: str,
    event_types: list[str],
    environments: list[str] | tuple = (),
    team: Team | None = None,
    request=None,
) -> IssuedSubscription:
    denial = manage_denial(actor, team=team)
    if denial:
        raise denial
    if kind not in WebhookKind.values:
        raise ValidationError({"kind": f"One of {', '.join(WebhookKind.values)}."})
    url = url_check(url)
    if WebhookSubscription.objects.filter(name=name.strip()).exists():
        raise Conflict(
            f"A webhook subscription is named '{name.strip()}' already.", code="webhook_name_taken"
        )
    known = known_environment_names()
    unknown = sorted({name for name in environments if known is not None and name not in known})
    if unknown:
        named = ", ".join(repr(name) for name in unknown)
        raise NotFound(
            f"No environment is named {named}. Names are exact (dev, test, prod …): "
            "GET /api/v1/environments/ lists them.",
            code="unknown_environment",
        )
    environments = environment_names_check(environments)
    secret = secret_generate() if kind == WebhookKind.STANDARD else ""
    person = actor if actor is not None and not is_service_account(actor) else None
    subscription = WebhookSubscription(
        name=name.strip(),
        kind=kind,
        url=url,
        url_hint=url_hint(url),
        event_types=_event_types_check(event_types),
        environments=environments,
        team=team,
        starts_after_seq=AuditEvent.objects.aggregate(tail=Max("seq"))["tail"] or 0,
        secret=secret,
        secret_rotated_at=timezone.now() if secret else None,
        created_by=person,
        created_by_name=describe_actor(actor).name,
    )
    subscription.full_clean()
    subscription.save()
    audit_record(
        actor=actor,
        action=AuditAction.WEBHOOK_CREATED,
        target=subscription,
        data=_record(subscription),
        request=request,
    )
    return IssuedSubscription(subscription, secret or None)


def _locked(subscription: WebhookSubscription) -> WebhookSubscription:
    return WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)


@transaction.atomic
def webhook_subscription_update(
    *,
    actor,
    subscription: WebhookSubscription,
    name: str,
    event_types: list[str],
    environments: list[str] | tuple,
    is_active: bool,
    url: str = "",
    request=None,
) -> WebhookSubscription:
    """Change what a subscription is told and where; an empty `url` keeps the one stored.
    Deactivating cancels what is still pending; nothing changed writes nothing."""
    subscription = _locked(subscription)
    denial = manage_denial(actor, team=subscription.team)
    if denial:
        raise denial
    before = _record(subscription)
    url_changed = bool(url) and url_check(url) != subscription.url
    if url_changed:
        subscription.url = url_check(url)
        subscription.url_hint = url_hint(subscription.url)
    subscription.name = name.strip()
    subscription.event_types = _event_types_check(event_types)
    subscription.environments = environment_names_check(environments)
    deactivating = subscription.is_active and not is_active
    subscription.is_active = is_active
    after = _record(subscription)
    if before == after and not url_changed:
        return subscription
    subscription.full_clean()
    subscription.save()
    if deactivating:
        _cancel_pending(subscription)
    audit_record(
        actor=actor,
        action=AuditAction.WEBHOOK_DEACTIVATED if deactivating else AuditAction.WEBHOOK_UPDATED,
        target=subscription,
        data={"before": before, "after": after, "url_changed": url_changed},
        request=request,
    )
    return subscription


def _cancel_pending(subscription: WebhookSubscription) -> int:
    return WebhookDelivery.objects.filter(
        subscription=subscription, status=DeliveryStatus.PENDING
    ).update(status=DeliveryStatus.CANCELLED, next_attempt_at=None)


@transaction.atomic
def webhook_subscription_deactivate(
    *, actor, subscription: WebhookSubscription, request=None
) -> WebhookSubscription:
    """Stop telling the subscription anything; its pending deliveries are cancelled."""
    subscription = _locked(subscription)
    denial = manage_denial(actor, team=subscription.team)
    if denial:
        raise denial
    if not subscription.is_active:
        return subscription
    subscription.is_active = False
    subscription.save(update_fields=["is_active", "updated_at"])
    cancelled = _cancel_pending(subscription)
    audit_record(
        actor=actor,
        action=AuditAction.WEBHOOK_DEACTIVATED,
        target=subscription,
        data={**_record(subscription), "cancelled_deliveries": cancelled},
        request=request,
    )
    return subscription


@transaction.atomic
def webhook_secret_rotate(*, actor, subscription: WebhookSubscription, request=None) -> str:
    """A new signing secret, returned once. The one it replaces goes on signing alongside it
    for `WEBHOOK_SECRET_OVERLAP_HOURS` (two signatures in `webhook-signature`), so a receiver
    can switch without losing a message."""
    subscription = _locked(subscription)
    denial = manage_denial(actor, team=subscription.team)
    if denial:
        raise denial
    if subscription.kind != WebhookKind.STANDARD:
        raise Conflict(
            "Only Standard Webhooks subscriptions have a signing secret.", code="no_signing_secret"
        )
    now = timezone.now()
    secret = secret_generate()
    subscription.previous_secret = subscription.secret
    subscription.previous_secret_until = now + timedelta(
        hours=settings.WEBHOOK_SECRET_OVERLAP_HOURS
    )
    subscription.secret = secret
    subscription.secret_rotated_at = now
    subscription.save(
        update_fields=[
            "secret",
            "previous_secret",
            "previous_secret_until",
            "secret_rotated_at",
            "updated_at",
        ]
    )
    audit_record(
        actor=actor,
        action=AuditAction.WEBHOOK_SECRET_ROTATED,
        target=subscription,
        data={
            "name": subscription.name,
            "previous_secret_signs_until": subscription.previous_secret_until,
        },
        request=request,
    )
    return secret


@transaction.atomic
def _test_delivery_create(*, actor, subscription: WebhookSubscription, request) -> int:
    subscription = _locked(subscription)
    denial = manage_denial(actor, team=subscription.team)
    if denial:
        raise denial
    if not subscription.is_active:
        raise ValidationError(
            {"is_active": "The subscription is deactivated: activate it, then send the test."}
        )
    now = timezone.now()
    message = message_for_test(subscription_name=subscription.name, actor=actor, at=now)
    delivery = WebhookDelivery.objects.create(
        subscription=subscription,
        event=None,
        event_type=TEST_EVENT_TYPE,
        body=render(subscription.kind, message, TEST_EVENT_TYPE),
        message_id=message_id_new(),
        next_attempt_at=None,
        created_at=now,
    )
    audit_record(
        actor=actor,
        action=AuditAction.WEBHOOK_TESTED,
        target=subscription,
        data={"name": subscription.name, "message_id": delivery.message_id},
        request=request,
    )
    return delivery.pk


def webhook_test_send(*, actor, subscription: WebhookSubscription, request=None) -> WebhookAttempt:
    """Send a `gatehouse.test` message now and return the answer: the one case where a
    person waits for a POST, because they asked for it. The test is recorded before it is
    sent, so the trail holds every test even if the endpoint hangs."""
    delivery_id = _test_delivery_create(actor=actor, subscription=subscription, request=request)
    return webhook_delivery_attempt(delivery_id=delivery_id, retry=False)
