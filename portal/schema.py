"""Teaches the OpenAPI schema about bearer tokens, inputs that take no other fields, the text
the server refuses and the errors every operation can answer, so that the schema states exactly
what the server accepts."""

from django.core.validators import RegexValidator
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
)
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from portal.serializers import NotBlank

# A NUL character is refused everywhere: in the address and the query string by
# portal.middleware.RejectNulCharactersMiddleware, in a body by DRF's text fields.
NO_NUL = r"^[^\u0000]*$"
# A text field that may not be blank needs some character other than white space (NotBlank).
NOT_BLANK = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
# Where blank is allowed drf-spectacular adds the empty string as a `oneOf` of its own.
SOME_TEXT = r"^[^\u0000]+$"
CONSTRAINED = {"pattern", "format", "enum"}


class GatehouseAutoSchema(AutoSchema):
    """drf-spectacular's schema, with the characters a text field refuses stated as a pattern."""

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and isinstance(schema, dict)
            and schema.get("type") == "string"
            and not CONSTRAINED & schema.keys()
            # A validator's pattern says it already (drf-spectacular adds it afterwards).
            and not any(isinstance(v, RegexValidator) for v in field.validators)
        ):
            if field.allow_blank:
                schema["pattern"] = SOME_TEXT
            else:
                refuses_blank = any(isinstance(v, NotBlank) for v in field.validators)
                schema["pattern"] = NOT_BLANK if refuses_blank else NO_NUL
        return schema


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A service account token: `Authorization: Bearer gh_…`.",
        }


class NoUnknownFieldsScheme(OpenApiSerializerExtension):
    """An input built on `NoUnknownFields` refuses other fields, and its schema says so."""

    target_class = "portal.serializers.NoUnknownFields"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        if direction == "request":
            schema["additionalProperties"] = False
        return schema


ERROR_BODY = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "Stable machine-readable reason."},
        "detail": {"type": "string"},
    },
    "required": ["detail"],
}
VALIDATION_BODY = {
    "type": "object",
    "description": "Field → messages, as DRF gives them.",
    "additionalProperties": True,
}
WRITE_METHODS = {"post", "put", "patch", "delete"}


def _error(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def document_error_answers(result, generator, request, public):
    """Every operation documents the errors the authentication, the scope check and the
    project's exception handler can answer with, so the schema (and the fuzzing that checks
    answers against it) knows them all. What a view already documents is kept."""
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            parameters = operation.get("parameters", [])
            answers = {
                "401": _error("No credentials, or a token that is unknown or revoked.", ERROR_BODY),
                "403": _error("Not allowed: a missing scope or a rule said no.", ERROR_BODY),
                "406": _error(
                    "The `Accept` header asks for something else than JSON: `not_acceptable`.",
                    ERROR_BODY,
                ),
                "503": _error(
                    "The database cannot be reached: `database_unavailable`.", ERROR_BODY
                ),
            }
            if parameters or "requestBody" in operation:
                answers["400"] = _error(
                    "Validation errors: field → messages (an unknown field is one); "
                    "`invalid_at`, `json_too_deep`.",
                    VALIDATION_BODY,
                )
            if "requestBody" in operation:
                answers["413"] = _error(
                    "The body is over the size limit: `body_too_large`.", ERROR_BODY
                )
                answers["415"] = _error(
                    "The body is not JSON (`Content-Type: application/json`): "
                    "`unsupported_media_type`.",
                    ERROR_BODY,
                )
            if any(parameter.get("in") == "path" for parameter in parameters):
                answers["404"] = _error("No such resource.", ERROR_BODY)
            if method in WRITE_METHODS:
                answers["409"] = _error(
                    "Clashes with what is recorded: `{code, detail}`.", ERROR_BODY
                )
            for status, answer in answers.items():
                operation["responses"].setdefault(status, answer)
            for parameter in parameters:
                schema = parameter.get("schema", {})
                if schema.get("type") == "string" and not CONSTRAINED & schema.keys():
                    schema["pattern"] = NO_NUL
    return result
