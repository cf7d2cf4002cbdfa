"""The append-only audit trail. Rows are inserted by `audit.services.audit_record` only; database
triggers reject UPDATE, DELETE and TRUNCATE (see migration 0002)."""

from django.db import models
from django.db.models import F, Func


class BodyValue(Func):
    """What the hashed body holds at `path` (keys from its top), as the database reads it.

    The queryable columns of an event are generated from its body by the database, so none of
    them can be changed without the body, whose hash the chain holds: the verifier checks once
    that the columns are still generated so (`audit.verification.derivation_problems`) instead
    of comparing every row. Text for a string; JSON for an object; the empty string read as no
    address for an IP."""

    def __init__(self, *path: str, output_field: models.Field, **extra):
        super().__init__(F("body"), output_field=output_field, **extra)
        self.path = path

    def reads_json(self) -> bool:
        return isinstance(self.output_field, models.JSONField)

    def reads_address(self) -> bool:
        return isinstance(self.output_field, models.GenericIPAddressField)

    def as_postgresql(self, compiler, connection, **extra):
        operator = "#>" if self.reads_json() else "#>>"
        template = f"(%(expressions)s::jsonb {operator} '{{{','.join(self.path)}}}')"
        if self.reads_address():
            template = f"NULLIF({template}, '')::inet"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler, connection, **extra):
        template = f"json_extract(%(expressions)s, '$.{'.'.join(self.path)}')"
        if self.reads_address():
            template = f"NULLIF({template}, '')"
        return self.as_sql(compiler, connection, template=template, **extra)


def _generated(*path: str, output_field: models.Field) -> models.GeneratedField:
    return models.GeneratedField(
        expression=BodyValue(*path, output_field=output_field),
        output_field=output_field,
        db_persist=True,
        null=output_field.null,
    )


class ActorKind(models.TextChoices):
    USER = "user", "User"
    SERVICE = "service", "Service account"
    SYSTEM = "system", "System"


class AppendOnlyModel(models.Model):
    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError(f"{type(self).__name__} rows are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError(f"{type(self).__name__} rows are append-only.")


class AuditEvent(AppendOnlyModel):
    """One event of the chain. `body` is the canonical JSON the hash covers, with `seq`,
    `occurred_at` and `prev_hash`; the other columns are queryable copies that the database
    generates from the body (`BodyValue`). No foreign keys: events outlive their subjects and
    actors."""

    seq = models.BigIntegerField(primary_key=True)
    occurred_at = models.DateTimeField()
    actor_kind = _generated(
        "actor", "kind", output_field=models.CharField(max_length=16, choices=ActorKind.choices)
    )
    actor_id = _generated("actor", "id", output_field=models.CharField(max_length=64))
    actor_name = _generated("actor", "name", output_field=models.CharField(max_length=150))
    action = _generated("action", output_field=models.CharField(max_length=100))
    object_type = _generated("object", "type", output_field=models.CharField(max_length=100))
    object_id = _generated("object", "id", output_field=models.CharField(max_length=100))
    object_repr = _generated("object", "repr", output_field=models.CharField(max_length=300))
    environment = _generated("environment", output_field=models.CharField(max_length=100))
    data = _generated("data", output_field=models.JSONField())
    request_id = _generated("request", "id", output_field=models.CharField(max_length=64))
    ip = _generated("request", "ip", output_field=models.GenericIPAddressField(null=True))
    user_agent = _generated("request", "user_agent", output_field=models.CharField(max_length=300))
    body = models.TextField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["occurred_at"], name="audit_event_time"),
            models.Index(fields=["action", "seq"], name="audit_event_action"),
            models.Index(fields=["actor_name", "seq"], name="audit_event_actor"),
            models.Index(fields=["object_type", "object_id", "seq"], name="audit_event_object"),
            models.Index(fields=["object_type", "seq"], name="audit_event_object_type"),
            models.Index(fields=["environment", "seq"], name="audit_event_environment"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_name}"


class AuditCheckpoint(AppendOnlyModel):
    """A signed tree head: the chain held `size` events ending in `tip_hash`, and the Merkle tree
    over their hashes has `merkle_root` (`audit.merkle`). `frontier` holds the roots of the
    tree's perfect subtrees (hex, space-separated), from which the next checkpoint continues the
    tree without reading the events before; its root must be the signed one. Checkpoints from
    before Merkle roots have neither and sign `audit.chain.checkpoint_message`."""

    size = models.BigIntegerField()
    tip_hash = models.CharField(max_length=64)
    merkle_root = models.CharField(max_length=64, blank=True)
    frontier = models.TextField(blank=True)
    signature = models.CharField(max_length=128)
    key_id = models.CharField(max_length=32)
    created_at = models.DateTimeField()
    created_by = models.CharField(max_length=150, default="system")

    class Meta:
        ordering = ["-size", "-id"]
        get_latest_by = "created_at"

    def __str__(self) -> str:
        return f"checkpoint at {self.size} ({self.created_at:%Y-%m-%d %H:%M})"


class AuditMerkleChunk(models.Model):
    """The Merkle root of complete chunk `index` of the trail (2^`audit.services.CHUNK_BITS`
    events from seq index * 2^bits + 1): derived from the event hashes and kept so that a proof
    over a long trail reads a few chunks instead of every hash. Not evidence: a wrong row gives
    a root other than the signed one, and is then computed again from the events."""

    index = models.BigIntegerField(unique=True)
    root = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"chunk {self.index}"


class AuditVerification(AppendOnlyModel):
    """One run of the verifier and what it found, so the portal can show the last verification.
    `first_bad_seq` names the first event that is wrong (or, for a rewrite only a checkpoint
    reveals, the first event after the last checkpoint that still holds)."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    run_by = models.CharField(max_length=150)
    ok = models.BooleanField()
    events_checked = models.BigIntegerField()
    checkpoints_checked = models.IntegerField()
    tip_seq = models.BigIntegerField()
    first_bad_seq = models.BigIntegerField(null=True, blank=True)
    problem = models.TextField(blank=True)
    events_per_second = models.FloatField()

    class Meta:
        ordering = ["-finished_at", "-id"]
        get_latest_by = ["finished_at", "id"]

    def __str__(self) -> str:
        verdict = "intact" if self.ok else f"broken at {self.first_bad_seq}"
        return f"verification {self.finished_at:%Y-%m-%d %H:%M}: {verdict}"


class AuditKeyRotation(AppendOnlyModel):
    """The signing key was replaced: the retired key and its successor each sign
    `audit.chain.key_rotation_message`, so the retired key stays trusted for the checkpoints it
    signed, and an auditor who pinned either key can follow to the other."""

    old_key_id = models.CharField(max_length=32)
    old_public_key = models.TextField()
    new_key_id = models.CharField(max_length=32, unique=True)
    new_public_key = models.TextField()
    rotated_at = models.DateTimeField()
    rotated_by = models.CharField(max_length=150)
    old_signature = models.CharField(max_length=128)
    new_signature = models.CharField(max_length=128)

    class Meta:
        ordering = ["rotated_at", "id"]

    def __str__(self) -> str:
        return f"key {self.old_key_id} retired for {self.new_key_id}"
