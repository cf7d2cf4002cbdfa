"""Teaches the OpenAPI schema about bearer tokens, inputs that take no other fields, and the
errors every operation can answer."""

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
)


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
            if any(parameter.get("in") == "path" for parameter in parameters):
                answers["404"] = _error("No such resource.", ERROR_BODY)
            if method in WRITE_METHODS:
                answers["409"] = _error(
                    "Clashes with what is recorded: `{code, detail}`.", ERROR_BODY
                )
            for status, answer in answers.items():
                operation["responses"].setdefault(status, answer)
    return result
