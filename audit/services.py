"""The one writer of the audit trail, and the trail's own bookkeeping: signed checkpoints and
verification runs.

Checkpoints and verification runs are not themselves chain events: they are append-only rows that
name who made them, and recording them as events would leave every checkpoint one event stale.
"""

import ipaddress
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from audit import keys
from audit.actions import AuditAction
from audit.chain import (
    GENESIS_HASH,
    event_hash,
    format_timestamp,
    key_rotation_message,
    tree_head_message,
)
from audit.merkle import ChunkedMerkleTree, leaf_of, root_of
from audit.models import (
    ActorKind,
    AuditCheckpoint,
    AuditEvent,
    AuditKeyRotation,
    AuditMerkleChunk,
    AuditVerification,
)
from audit.offline_verify import raw_public_key
from audit.selectors import AUDITORS_GROUP
from audit.verification import Report, verify_chain
from audit.witness import witness_checkpoint, witnessed_heads
from portal.exceptions import Conflict
from portal.rows import Statement, row_insert

logger = logging.getLogger(__name__)

# Any constant shared by every writer; it names the chain's append lock on PostgreSQL.
AUDIT_APPEND_LOCK_KEY = 0x6761746568
REDACTED_KEYS = {"password", "token", "secret", "api_key"}
# `AuditAction.values` builds its list on every call; an append asks on every event.
AUDIT_ACTIONS = frozenset(AuditAction.values)


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


@dataclass(frozen=True)
class Actor:
    """Who acts, as the trail names them: kind, id and the name they had at that moment."""

    kind: ActorKind
    id: str
    name: str


def describe_actor(actor: Any) -> Actor:
    """A user, a service account, or None for the system."""
    if actor is None:
        return Actor(ActorKind.SYSTEM, "", "system")
    if getattr(actor, "is_service_account", False):
        return Actor(ActorKind.SERVICE, str(actor.pk), actor.name)
    if getattr(actor, "is_authenticated", False) and actor.pk is not None:
        return Actor(ActorKind.USER, str(actor.pk), actor.get_username())
    raise ValueError("An audit event needs a signed-in user, a service account or None.")


def describe_target(target: models.Model | None) -> tuple[str, str, str]:
    if target is None:
        return "", "", ""
    return target._meta.label_lower, str(target.pk), str(target)[:300]


def normalise_ip(address: str | None) -> str | None:
    """The form the database gives back, so the column and the hashed body agree: IPv6 compressed
    and lower case, IPv4-mapped addresses as IPv4, anything unparsable dropped."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def describe_request(request: Any) -> tuple[str, str | None, str]:
    if request is None:
        return "", None, ""
    meta = getattr(request, "META", {})
    return (
        getattr(request, "id", "") or "",
        normalise_ip(meta.get("REMOTE_ADDR")),
        (meta.get("HTTP_USER_AGENT") or "")[:300],
    )


TAIL_SQL = 'SELECT "seq", "hash" FROM "audit_auditevent" ORDER BY "seq" DESC LIMIT 1'


def _lock_tail() -> tuple[int, str]:
    """Serialise appends and read the tail. On SQLite, BEGIN IMMEDIATE already holds the lock.
    On PostgreSQL the lock and the read go in one round trip, as two statements: under READ
    COMMITTED each statement of the string takes its own snapshot, so the read starts once the
    lock is held and sees the previous holder's event."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT pg_advisory_xact_lock(%s); {TAIL_SQL}", [AUDIT_APPEND_LOCK_KEY])
        else:
            cursor.execute(TAIL_SQL)
        tail = cursor.fetchone()
    return tuple(tail) if tail else (0, GENESIS_HASH)


def audit_record(
    *,
    actor: Any,
    action: AuditAction,
    target: models.Model | None = None,
    environment: Any = None,
    data: dict | None = None,
    request: Any = None,
    then: Statement | None = None,
) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction.

    Never durable on its own: the event commits or rolls back with the change it records. Call it
    last in a service so the append lock is held briefly. `action` is an `AuditAction`: a name
    made up elsewhere would be an event no filter lists. `then` is a statement of the caller's
    to run right after the event under the append lock (sent with it where the database allows).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the service's transaction.")
    if action not in AUDIT_ACTIONS:
        raise ValueError(f"{action!r} is not an audit action: add it to AuditAction first.")
    who = describe_actor(actor)
    object_type, object_id, object_repr = describe_target(target)
    environment_name = getattr(environment, "name", environment) or ""
    request_id, ip, user_agent = describe_request(request)
    payload = to_json_value(data or {})

    tail_seq, tail_hash = _lock_tail()
    event = chain_event(
        seq=tail_seq + 1,
        prev_hash=tail_hash,
        occurred_at=timezone.now(),
        actor_kind=who.kind,
        actor_id=who.id,
        actor_name=who.name,
        action=AuditAction(action).value,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr,
        environment=environment_name,
        data=payload,
        request_id=request_id,
        ip=ip,
        user_agent=user_agent,
    )
    return row_insert(event, then=then)


def chain_event(*, seq: int, prev_hash: str, occurred_at: datetime, **columns: Any) -> AuditEvent:
    """The unsaved event that follows `prev_hash`: its canonical body and its hash.

    The one place where a body is made, so that the benchmark's bulk loader (bench/) writes rows
    identical to `audit_record`'s. `columns` are the queryable copies, `data` already plain JSON.
    """
    stamp = format_timestamp(occurred_at)
    body = rfc8785.dumps(
        {
            "seq": seq,
            "occurred_at": stamp,
            "actor": {
                "kind": str(columns["actor_kind"]),
                "id": columns["actor_id"],
                "name": columns["actor_name"],
            },
            "action": columns["action"],
            "object": {
                "type": columns["object_type"],
                "id": columns["object_id"],
                "repr": columns["object_repr"],
            },
            "environment": columns["environment"],
            "data": columns["data"],
            "request": {
                "id": columns["request_id"],
                "ip": columns["ip"] or "",
                "user_agent": columns["user_agent"],
            },
        }
    ).decode()
    return AuditEvent(
        seq=seq,
        occurred_at=occurred_at,
        body=body,
        prev_hash=prev_hash,
        hash=event_hash(prev_hash, seq, stamp, body),
        **columns,
    )


def latest_tree_head() -> AuditCheckpoint | None:
    """The newest checkpoint with a Merkle root: where a walk can continue the tree from."""
    return AuditCheckpoint.objects.exclude(merkle_root="").order_by("-size", "-id").first()


# Chunks of 4,096 events: a million events make 244 stored roots, and a proof reads one chunk.
CHUNK_BITS = 12


def _chunk_leaves(first_seq: int, last_seq: int) -> list[bytes]:
    hashes = AuditEvent.objects.filter(seq__gte=first_seq, seq__lte=last_seq).order_by("seq")
    return [leaf_of(stored) for stored in hashes.values_list("hash", flat=True)]


def _chunk_roots(complete: int, *, fresh: bool) -> list[bytes]:
    span = 1 << CHUNK_BITS
    stored = (
        {}
        if fresh
        else dict(AuditMerkleChunk.objects.filter(index__lt=complete).values_list("index", "root"))
    )
    roots, computed = [], []
    for index in range(complete):
        if index in stored:
            roots.append(bytes.fromhex(stored[index]))
            continue
        root = root_of(_chunk_leaves(index * span + 1, (index + 1) * span))
        roots.append(root)
        computed.append(AuditMerkleChunk(index=index, root=root.hex()))
    if fresh:
        AuditMerkleChunk.objects.filter(index__lt=complete).delete()
    AuditMerkleChunk.objects.bulk_create(computed, ignore_conflicts=True)
    return roots


def merkle_chunks_fill(*, size: int) -> int:
    """Store the roots of the complete chunks among the first `size` events that are not stored
    yet (the hourly job, after it signs), so an evidence pack never computes them while someone
    waits. Returns how many chunks are stored."""
    return len(_chunk_roots(size >> CHUNK_BITS, fresh=False))


def proof_tree(*, size: int, root: bytes) -> ChunkedMerkleTree:
    """The Merkle tree over the first `size` events, for proofs against `root` (a verified
    head's): from the stored chunk roots, computing the chunks not stored yet. Stored roots that
    do not give `root` are computed again from the events; if the events still do not give it,
    `Conflict` (`chain_broken`)."""
    span = 1 << CHUNK_BITS

    def load(chunk: int) -> list[bytes]:
        return _chunk_leaves(chunk * span + 1, min((chunk + 1) * span, size))

    for fresh in (False, True):
        tree = ChunkedMerkleTree(
            size, CHUNK_BITS, _chunk_roots(size >> CHUNK_BITS, fresh=fresh), load
        )
        if tree.root() == root:
            return tree
    raise Conflict(
        "The stored event hashes do not give the signed Merkle root, so nothing is signed or "
        "exported. Run `manage.py audit_verify` to find the first bad event, and see "
        "docs/audit.md (Verification and checkpoints).",
        code="chain_broken",
    )


def verified_since_latest_head() -> Report:
    """Verify the events since the latest signed tree head, refusing (`chain_broken`) when they
    do not: a signature must never vouch for a trail that was rewritten."""
    report = verify_chain(after=latest_tree_head())
    if not report.ok:
        raise Conflict(
            f"The trail does not verify at event {report.first_bad_seq}: {report.problem}. "
            "Nothing is signed over it: find who changed it (docs/audit.md, Verification and "
            "checkpoints) before anything else.",
            code="chain_broken",
        )
    return report


@transaction.atomic
def audit_checkpoint_create(*, actor: Any) -> AuditCheckpoint:
    """Sign a tree head over the chain: its size, tip hash and Merkle root, with the portal's
    Ed25519 key; then publish it to the witnesses once it commits.

    Refuses (`chain_broken`) when the events since the latest checkpoint do not verify. Only
    those events are walked, continuing the tree from that checkpoint's frontier, so a
    checkpoint stays cheap however long the trail grows. When no event came since the latest
    checkpoint, that one still speaks for the tip and is returned.
    """
    latest = latest_tree_head()
    report = verify_chain(after=latest)
    if report.tip_seq == 0:
        raise Conflict(
            "The trail is empty: there is nothing to sign yet. Checkpoint once events are "
            "recorded.",
            code="empty_trail",
        )
    if report.ok and latest is not None and latest.size == report.tip_seq:
        return latest
    if not report.ok:
        raise Conflict(
            f"The trail does not verify at event {report.first_bad_seq}: {report.problem}. "
            "Nothing is signed over it: find who changed it (docs/audit.md, Verification and "
            "checkpoints) before anything else.",
            code="chain_broken",
        )
    root = report.frontier.root().hex()
    checkpoint = AuditCheckpoint(
        size=report.tip_seq,
        tip_hash=report.tip_hash,
        merkle_root=root,
        frontier=" ".join(report.frontier.to_hex()),
        signature=keys.sign(tree_head_message(report.tip_seq, report.tip_hash, root)),
        key_id=keys.current_key_id(),
        created_at=timezone.now(),
        created_by=describe_actor(actor).name,
    )
    checkpoint.full_clean()
    checkpoint.save()
    transaction.on_commit(partial(witness_checkpoint, checkpoint))
    return checkpoint


def audit_verify(
    *, actor: Any, witness_dir: Path | None = None
) -> tuple[AuditVerification, Report]:
    """Verify the whole chain, and every head in `witness_dir` when given, and record the result
    for the portal's banner.

    Deliberately outside one transaction: the walk only reads, and on SQLite a transaction would
    hold the write lock and stall every service for the length of the walk.
    """
    started_at = timezone.now()
    witnessed = witnessed_heads(witness_dir) if witness_dir is not None else []
    report = verify_chain(witnessed=witnessed)
    if not report.ok:
        logger.error(
            "Audit trail verification failed at event %s: %s", report.first_bad_seq, report.problem
        )
    run = AuditVerification(
        started_at=started_at,
        finished_at=timezone.now(),
        run_by=describe_actor(actor).name,
        ok=report.ok,
        events_checked=report.events,
        checkpoints_checked=report.checkpoints,
        tip_seq=report.tip_seq,
        first_bad_seq=report.first_bad_seq,
        problem=report.problem,
        events_per_second=report.events_per_second,
    )
    run.full_clean()
    with transaction.atomic():
        run.save()
    return run, report


@transaction.atomic
def auditor_add(*, actor: Any, user: AbstractBaseUser) -> bool:
    """Give a person read access to the trail through the Auditors group. Who can read the
    evidence is itself evidence, so it is audited; adding someone twice records nothing."""
    group, _created = Group.objects.get_or_create(name=AUDITORS_GROUP)
    if group.user_set.filter(pk=user.pk).exists():
        return False
    group.user_set.add(user)
    audit_record(
        actor=actor,
        action=AuditAction.AUDIT_READER_ADDED,
        target=user,
        data={"user": user.get_username(), "group": AUDITORS_GROUP},
    )
    return True


@transaction.atomic
def audit_signing_key_rotate(*, actor: Any, new_key_pem: bytes | None = None) -> AuditKeyRotation:
    """Replace the checkpoint signing key. Both keys sign the rotation record, so checkpoints
    the retired key signed stay trusted and an auditor who pinned either key can follow to the
    other.

    With the embedded key file, a new key is generated and written to it once the rotation
    commits. With `AUDIT_SIGNING_KEY` from the secret store, the caller brings the new key
    (`new_key_pem`) and the operator then sets it there; until then the retired key still signs,
    and is still trusted.
    """
    if settings.AUDIT_SIGNING_KEY and new_key_pem is None:
        raise Conflict(
            "The signing key comes from AUDIT_SIGNING_KEY: bring the new key "
            "(audit_rotate_key --new-key-file FILE), then set it there.",
            code="signing_key_from_settings",
        )
    old = keys.private_key()
    new = keys.load_private_pem(new_key_pem) if new_key_pem else Ed25519PrivateKey.generate()
    old_public, new_public = old.public_key(), new.public_key()
    old_id, new_id = keys.key_id_of(old_public), keys.key_id_of(new_public)
    if old_id == new_id or AuditKeyRotation.objects.filter(new_key_id=new_id).exists():
        raise Conflict(
            "That key has been the signing key before, and a retired key never signs again: "
            "generate a new one.",
            code="signing_key_reused",
        )
    rotated_at = timezone.now()
    message = key_rotation_message(
        old_id,
        raw_public_key(old_public).hex(),
        new_id,
        raw_public_key(new_public).hex(),
        format_timestamp(rotated_at),
    )
    rotation = AuditKeyRotation(
        old_key_id=old_id,
        old_public_key=keys.public_pem(old_public),
        new_key_id=new_id,
        new_public_key=keys.public_pem(new_public),
        rotated_at=rotated_at,
        rotated_by=describe_actor(actor).name,
        old_signature=old.sign(message).hex(),
        new_signature=new.sign(message).hex(),
    )
    rotation.full_clean()
    rotation.save()
    audit_record(
        actor=actor,
        action=AuditAction.AUDIT_SIGNING_KEY_ROTATED,
        target=rotation,
        data={"old_key_id": old_id, "new_key_id": new_id},
    )
    if not settings.AUDIT_SIGNING_KEY:
        transaction.on_commit(partial(keys.install_key_file, new))
    return rotation
