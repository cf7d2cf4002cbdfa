"""The one way the ticket clients talk to ServiceNow and Jira: JSON over HTTP with the configured
credentials, no redirects (urllib would carry the Authorization header to whatever a Location
names), a timeout, and every exchange written down for the delivery log."""

import base64
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

# A Retry-After is honoured within these bounds: a second at least, an hour at most.
RETRY_AFTER_BOUNDS = (1, 3600)
DETAIL_LIMIT = 500


class TicketSystemError(Exception):
    """The ticket system did not do what was asked: `status` is its answer's HTTP status (None
    when nothing came back), `retry_after` the seconds it asked us to wait, if it said."""

    def __init__(self, detail: str, *, status: int | None = None, retry_after: int | None = None):
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.retry_after = retry_after


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


@dataclass
class Exchange:
    """One request and what came back, for the delivery log."""

    at: datetime
    method: str
    path: str
    status: int | None
    ok: bool
    detail: str
    duration_ms: int


@dataclass
class Connection:
    """The configured ticket system, and the log of what was said to it."""

    base_url: str
    authorization: str
    timeout: float
    exchanges: list[Exchange] = field(default_factory=list)

    @classmethod
    def configured(cls) -> "Connection":
        if settings.GATEHOUSE_TICKETS_TOKEN:
            authorization = f"Bearer {settings.GATEHOUSE_TICKETS_TOKEN}"
        else:
            pair = f"{settings.GATEHOUSE_TICKETS_USER}:{settings.GATEHOUSE_TICKETS_PASSWORD}"
            authorization = f"Basic {base64.b64encode(pair.encode()).decode()}"
        return cls(
            base_url=settings.GATEHOUSE_TICKETS_URL,
            authorization=authorization,
            timeout=settings.GATEHOUSE_TICKETS_TIMEOUT,
        )

    def call(self, method: str, path: str, *, query: dict | None = None, body: Any = None) -> Any:
        """Send one request; the decoded JSON answer (None for an empty one), or
        TicketSystemError with what the system said."""
        target = path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        url = self.base_url + target
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise TicketSystemError(f"{self.base_url!r} is not an http(s) URL.")
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            url,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={
                "Accept": "application/json",
                "Content-Type": "application/json",
                "Authorization": self.authorization,
            },
        )
        started, at = time.monotonic(), timezone.now()
        status, detail = None, ""
        try:
            opener = urllib.request.build_opener(NoRedirects)
            with opener.open(request, timeout=self.timeout) as response:  # nosec B310 - checked above
                status = response.status
                raw = response.read()
            return json.loads(raw) if raw.strip() else None
        except urllib.error.HTTPError as error:
            status = error.code
            detail = _error_detail(error)
            raise TicketSystemError(
                detail,
                status=status,
                retry_after=retry_after_seconds(error.headers.get("Retry-After")),
            ) from error
        except (OSError, http.client.HTTPException) as error:
            # Refused, reset, dropped or timed out: the request may or may not have been acted on.
            detail = f"No answer: {error.__class__.__name__} {error}".strip()
            raise TicketSystemError(detail) from error
        except ValueError as error:
            detail = f"The answer is not JSON: {error}"
            raise TicketSystemError(detail, status=status) from error
        finally:
            self.exchanges.append(
                Exchange(
                    at=at,
                    method=method,
                    path=target[:500],
                    status=status,
                    ok=not detail,
                    detail=detail[:DETAIL_LIMIT],
                    duration_ms=int((time.monotonic() - started) * 1000),
                )
            )


def _error_detail(error: urllib.error.HTTPError) -> str:
    """The system's own words: ServiceNow's `{"error": {"message", "detail"}}`, Jira's
    `{"errorMessages": [...], "errors": {field: message}}`, else the start of the body."""
    try:
        raw = error.read()
    except OSError:
        raw = b""
    said = ""
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        problem = answer.get("error")
        if isinstance(problem, dict):
            said = ": ".join(
                str(part) for part in (problem.get("message"), problem.get("detail")) if part
            )
        messages = [str(message) for message in answer.get("errorMessages") or []]
        fields = answer.get("errors")
        if isinstance(fields, dict):
            messages += [f"{name}: {message}" for name, message in fields.items()]
        said = said or "; ".join(messages)
    if not said:
        said = raw[:200].decode("utf-8", "replace").strip()
    return f"{error.code} {error.reason}" + (f": {said}" if said else "")


def retry_after_seconds(value: str | None) -> int | None:
    """Seconds from a Retry-After header, in seconds or as an HTTP date, within bounds."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = int(value)
    else:
        try:
            seconds = int((parsedate_to_datetime(value) - timezone.now()).total_seconds())
        except (TypeError, ValueError):
            return None
    low, high = RETRY_AFTER_BOUNDS
    return min(max(seconds, low), high)
