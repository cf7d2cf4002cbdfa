"""Domain errors and the one place that turns them into API responses."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, InterfaceError, OperationalError
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.response import Response

DATABASE_UNREACHABLE = (
    "The database cannot be reached. Retry in a minute; if it lasts, tell an administrator."
)


class DomainError(Exception):
    """A rule said no. `code` is stable and machine-readable; the message is for people."""

    code = "domain_error"
    status_code = status.HTTP_409_CONFLICT

    def __init__(self, detail: str, *, code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class RuleDenied(DomainError):
    """The actor is not allowed to do this, whatever the state of things."""

    code = "forbidden"
    status_code = status.HTTP_403_FORBIDDEN


class Conflict(DomainError):
    """The request clashes with what is recorded (a different payload under the same key, a
    move the state does not allow)."""

    code = "conflict"
    status_code = status.HTTP_409_CONFLICT


class BadRequest(DomainError):
    """The request cannot be read as asked (a moment that does not exist, a body too deep)."""

    code = "bad_request"
    status_code = status.HTTP_400_BAD_REQUEST


class InvalidQuery(BadRequest):
    """Query parameters a list cannot take: an unknown filter, a value of the wrong shape, a
    cursor that is not one of ours. `fields` names each parameter with its messages."""

    code = "invalid_filter"

    def __init__(self, detail: str, *, fields: dict[str, list[str]], code: str | None = None):
        super().__init__(detail, code=code)
        self.fields = fields


class BodyTooLarge(DomainError):
    """The body is over `DATA_UPLOAD_MAX_MEMORY_SIZE`: refused before it is read whole."""

    code = "body_too_large"
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


class NotFound(DomainError):
    code = "not_found"
    status_code = status.HTTP_404_NOT_FOUND


def body_too_large() -> BodyTooLarge:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return BodyTooLarge(f"The request body is larger than the portal takes ({limit} bytes).")


def api_exception_handler(exc, context):
    # Imported here: DRF's views module loads the API's parsers, which raise the errors above.
    from rest_framework.views import exception_handler

    if isinstance(exc, RequestDataTooBig):
        exc = body_too_large()
    if isinstance(exc, DomainError):
        body = {"code": exc.code, "detail": exc.detail}
        if isinstance(exc, InvalidQuery):
            body["fields"] = exc.fields
        return Response(body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = DRFValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    if isinstance(exc, (OperationalError, InterfaceError)) or type(exc) is DatabaseError:
        return Response(
            {
                "code": "database_unavailable",
                "detail": DATABASE_UNREACHABLE,
            },
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    response = exception_handler(exc, context)
    # DRF's own refusals (401, 403, 405, 415, 429) get the house's `{code, detail}` shape.
    if (
        response is not None
        and isinstance(exc, APIException)
        and not isinstance(exc, DRFValidationError)
        and isinstance(response.data, dict)
        and isinstance(exc.get_codes(), str)
    ):
        response.data = {"code": exc.get_codes(), **response.data}
    return response
