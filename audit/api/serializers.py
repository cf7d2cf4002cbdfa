from rest_framework import serializers

from audit.actions import AuditAction
from audit.models import AuditCheckpoint, AuditEvent, AuditVerification
from audit.selectors import MAX_PAGE_SIZE, PAGE_SIZE, EventFilters
from portal.serializers import MomentField, Untrimmed


class EventQuerySerializer(Untrimmed):
    """Query parameters of the event list: the auditor page's filters plus the cursor."""

    about = serializers.CharField(
        required=False,
        max_length=100,
        help_text="CR-22, a model's name, a deployment (D-17) or a commit SHA or prefix: its "
        "events and those of what it stands for (a change's build and deployments).",
    )
    model = serializers.CharField(
        required=False, max_length=100, help_text="a model's name: the events of everything of it"
    )
    actor = serializers.CharField(required=False, max_length=150)
    action = serializers.ChoiceField(required=False, choices=AuditAction.choices)
    object_type = serializers.CharField(required=False, max_length=100)
    object_id = serializers.CharField(required=False, max_length=100)
    environment = serializers.CharField(required=False, max_length=100)
    since = MomentField(required=False, help_text="RFC 3339, with seconds and its offset.")
    until = MomentField(required=False, help_text="RFC 3339, with seconds and its offset.")
    cursor = serializers.IntegerField(required=False, min_value=1)
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_PAGE_SIZE, default=PAGE_SIZE
    )

    def filters(self) -> EventFilters:
        return EventFilters.from_data(self.validated_data)


class AuditEventSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="seq")
    body = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "seq",
            "occurred_at",
            "actor_kind",
            "actor_id",
            "actor_name",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "environment",
            "data",
            "request_id",
            "ip",
            "user_agent",
            "body",
            "prev_hash",
            "hash",
        ]

    def get_body(self, event: AuditEvent) -> str:
        """The exact canonical JSON text the hash covers."""
        return event.body


class EventPageSerializer(serializers.Serializer):
    results = AuditEventSerializer(many=True)
    next_cursor = serializers.IntegerField(allow_null=True)
    next = serializers.URLField(allow_null=True)


class VerificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditVerification
        fields = [
            "id",
            "started_at",
            "finished_at",
            "run_by",
            "ok",
            "events_checked",
            "checkpoints_checked",
            "tip_seq",
            "first_bad_seq",
            "problem",
            "events_per_second",
        ]


class CheckpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditCheckpoint
        fields = [
            "id",
            "size",
            "tip_hash",
            "merkle_root",
            "signature",
            "key_id",
            "created_at",
            "created_by",
        ]


class PublishedKeySerializer(serializers.Serializer):
    key_id = serializers.CharField()
    public_key = serializers.CharField()
    current = serializers.BooleanField()
    retired_at = serializers.CharField(allow_null=True)


class VerifyStatusSerializer(serializers.Serializer):
    last_verification = VerificationSerializer(allow_null=True)
    latest_checkpoint = CheckpointSerializer(allow_null=True)
    key_id = serializers.CharField()
    public_key = serializers.CharField()
    keys = PublishedKeySerializer(many=True)


class ExportQuerySerializer(Untrimmed):
    since = MomentField(required=False, help_text="RFC 3339, with seconds and its offset.")
    until = MomentField(required=False, help_text="RFC 3339, with seconds and its offset.")
