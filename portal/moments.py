"""The one reader of `?at=`: what the pages and the API show "as of" a moment."""

import re
from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from portal.exceptions import BadRequest

EXAMPLE = "2026-11-26T09:00:00+01:00"
# RFC 3339's date-time, as the OpenAPI schema's `format: date-time` says: seconds and an offset.
RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


def moment_from_query(raw: str, *, offset_required: bool = False) -> datetime | None:
    """The moment `raw` names, or None when it is empty on a page. A date that does not exist (30
    February, hour 25) or an offset beyond a day is refused with `invalid_at`, never passed on
    to fail in a query. Without an offset the moment is in the portal's time zone, unless
    `offset_required` (the API), which takes RFC 3339 only (an empty value is no moment); there
    a moment that falls before year 1 or after 9999 in UTC is before or after everything, and
    is read so."""
    if not raw and not offset_required:
        return None
    try:
        if offset_required and not RFC3339.fullmatch(raw):
            raise ValueError(raw)
        moment = parse_datetime(
            f"{raw[:10]}T{raw[11:-1]}{raw[-1].upper()}" if offset_required else raw
        )
        if moment is not None and timezone.is_naive(moment) and not offset_required:
            moment = timezone.make_aware(moment)
        if moment is not None and timezone.is_aware(moment):
            # In UTC: PostgreSQL refuses offsets beyond 15:59 that ISO-8601 allows.
            return _in_utc(moment, clamp=offset_required)
    except (ValueError, OverflowError):
        pass
    shown = raw if len(raw) <= 40 else f"{raw[:40]}…"
    offset = " (RFC 3339: with seconds and its offset)" if offset_required else ""
    raise BadRequest(
        f"'{shown}' is not a real date and time: give one in ISO-8601{offset}, such as {EXAMPLE}.",
        code="invalid_at",
    )


def _in_utc(moment: datetime, *, clamp: bool) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        if not clamp:
            raise
        return EARLIEST if moment.year == 1 else LATEST
