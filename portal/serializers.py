"""What every API input shares."""

from collections.abc import Mapping

from rest_framework import serializers

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
