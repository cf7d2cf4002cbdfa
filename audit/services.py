"""The one writer of the audit trail."""

import json
from typing import Any

import rfc8785
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from audit.chain import GENESIS_HASH, event_hash, format_timestamp
from audit.models import ActorKind, AuditEvent

# Any constant shared by every writer; it names the chain's append lock on PostgreSQL.
AUDIT_APPEND_LOCK_KEY = 0x6761746568
REDACTED_KEYS = {"password", "token", "secret", "api_key"}


def to_json_value(value: Any) -> Any:
    """Plain JSON for the event body: dates and decimals as text, secrets never."""
    plain = json.loads(json.dumps(value, cls=DjangoJSONEncoder))
    return _redact(plain)


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: "[redacted]" if key.lower() in REDACTED_KEYS else _redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact(item) for item in value]
    return value


def describe_actor(actor: Any) -> tuple[str, str, str]:
    """(kind, id, name) of who acts: a user, a service account, or None for the system."""
    if actor is None:
        return ActorKind.SYSTEM, "", "system"
    if getattr(actor, "is_service_account", False):
        return ActorKind.SERVICE, str(actor.pk), actor.name
    if getattr(actor, "is_authenticated", False) and actor.pk is not None:
        return ActorKind.USER, str(actor.pk), actor.get_username()
    raise ValueError("An audit event needs a signed-in user, a service account or None.")


def describe_target(target: models.Model | None) -> tuple[str, str, str]:
    if target is None:
        return "", "", ""
    return target._meta.label_lower, str(target.pk), str(target)[:300]


def describe_request(request: Any) -> tuple[str, str | None, str]:
    if request is None:
        return "", None, ""
    meta = getattr(request, "META", {})
    return (
        getattr(request, "id", "") or "",
        meta.get("REMOTE_ADDR") or None,
        (meta.get("HTTP_USER_AGENT") or "")[:300],
    )


def _lock_tail() -> tuple[int, str]:
    """Serialise appends and read the tail. On SQLite, BEGIN IMMEDIATE already holds the lock."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_APPEND_LOCK_KEY])
    tail = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    return tail if tail else (0, GENESIS_HASH)


def audit_record(
    *,
    actor: Any,
    action: str,
    target: models.Model | None = None,
    environment: Any = None,
    data: dict | None = None,
    request: Any = None,
) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction.

    Never durable on its own: the event commits or rolls back with the change it records. Call it
    last in a service so the append lock is held briefly.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the service's transaction.")
    actor_kind, actor_id, actor_name = describe_actor(actor)
    object_type, object_id, object_repr = describe_target(target)
    environment_name = getattr(environment, "name", environment) or ""
    request_id, ip, user_agent = describe_request(request)
    payload = to_json_value(data or {})

    tail_seq, tail_hash = _lock_tail()
    seq = tail_seq + 1
    occurred_at = timezone.now()
    stamp = format_timestamp(occurred_at)
    body = rfc8785.dumps(
        {
            "seq": seq,
            "occurred_at": stamp,
            "actor": {"kind": str(actor_kind), "id": actor_id, "name": actor_name},
            "action": action,
            "object": {"type": object_type, "id": object_id, "repr": object_repr},
            "environment": environment_name,
            "data": payload,
            "request": {"id": request_id, "ip": ip or "", "user_agent": user_agent},
        }
    ).decode()
    return AuditEvent.objects.create(
        seq=seq,
        occurred_at=occurred_at,
        actor_kind=actor_kind,
        actor_id=actor_id,
        actor_name=actor_name,
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr,
        environment=environment_name,
        data=payload,
        request_id=request_id,
        ip=ip,
        user_agent=user_agent,
        body=body,
        prev_hash=tail_hash,
        hash=event_hash(tail_hash, seq, stamp, body),
    )
