"""What every API input shares."""

from collections.abc import Mapping

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.exceptions import BadRequest
from portal.moments import moment_from_query

UNKNOWN_FIELD = "Unknown field."


def _json_type_problem(field: serializers.Field, value) -> str | None:
    """What DRF would coerce but the schema's JSON type refuses: `"7"` for an integer, `7` for
    a string, `"true"` or `1` for a boolean."""
    if value is None:
        return None
    if isinstance(field, serializers.ChoiceField):
        if all(isinstance(choice, str) for choice in field.choices):
            return None if isinstance(value, str) else "Must be a JSON string."
        return None if type(value) is int else "Must be a JSON integer."
    if isinstance(field, serializers.CharField) and not isinstance(value, str):
        return "Must be a JSON string."
    if isinstance(field, serializers.BooleanField) and not isinstance(value, bool):
        return "Must be true or false."
    if isinstance(field, serializers.IntegerField) and type(value) is not int:
        return "Must be a JSON integer."
    return None


class NotBlank:
    """What DRF's trimming did for a text field that may not be blank: some character other
    than white space must be there (the schema's pattern, portal.schema.NOT_BLANK)."""

    def __call__(self, value: str) -> None:
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.", code="blank")


def _untrimmed(field: serializers.Field) -> None:
    if isinstance(field, serializers.CharField):
        if field.trim_whitespace and not field.allow_blank:
            field.validators = [*field.validators, NotBlank()]
        field.trim_whitespace = False
    child = getattr(field, "child", None)
    if isinstance(child, serializers.Field):
        _untrimmed(child)


class Untrimmed(serializers.Serializer):
    """Text is read as sent: DRF would strip it before `max_length`, so a name past the
    schema's maxLength that ends in spaces would pass. A field that may not be blank still needs
    a character other than white space (NotBlank). Every API input, body or query, is one."""

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        for field in fields.values():
            _untrimmed(field)
        return fields


class NoUnknownFields(Untrimmed):
    """A field the input does not know is an error under its own name, not silently dropped:
    a misspelt `artifact_sha265` must not register a build without its digest. A value of
    another JSON type than its field's is an error too, not converted. The OpenAPI schema says
    the same (`additionalProperties: false`, portal.schema; the types)."""

    def to_internal_value(self, data):
        unknown = (
            {name: [UNKNOWN_FIELD] for name in data if name not in self.fields}
            if isinstance(data, Mapping)
            else {}
        )
        if isinstance(data, Mapping):
            for name, field in self.fields.items():
                problem = _json_type_problem(field, data[name]) if name in data else None
                if problem is not None:
                    unknown[name] = [problem]
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
