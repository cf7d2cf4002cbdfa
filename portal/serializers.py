"""What every API input shares."""

from collections.abc import Mapping

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.exceptions import BadRequest
from portal.moments import moment_from_query

UNKNOWN_FIELD = "Unknown field."


class NoUnknownFields(serializers.Serializer):
    """A field the input does not know is an error under its own name, not silently dropped:
    a misspelt `artifact_sha265` must not register a build without its digest. The OpenAPI
    schema says the same (`additionalProperties: false`, portal.schema)."""

    def to_internal_value(self, data):
        unknown = (
            {name: [UNKNOWN_FIELD] for name in data if name not in self.fields}
            if isinstance(data, Mapping)
            else {}
        )
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as invalid:
            if not unknown or not isinstance(invalid.detail, dict):
                raise
            raise serializers.ValidationError({**invalid.detail, **unknown}) from invalid
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


@extend_schema_field(OpenApiTypes.DATETIME)
class MomentField(serializers.Field):
    """An ISO-8601 moment with its offset, read as `?at=` is (portal.moments): a date that does
    not exist or a moment without its offset is refused, never taken in the server's zone."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or not data or len(data) > 64:
            raise serializers.ValidationError("An ISO-8601 date and time with its offset.")
        try:
            return moment_from_query(data, offset_required=True)
        except BadRequest as refused:
            raise serializers.ValidationError(refused.detail) from None

    def to_representation(self, value):
        return value.isoformat()
