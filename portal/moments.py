"""The one reader of `?at=`: what the pages and the API show "as of" a moment."""

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from portal.exceptions import BadRequest

EXAMPLE = "2026-11-26T09:00+01:00"


def moment_from_query(raw: str, *, offset_required: bool = False) -> datetime | None:
    """The moment `raw` names, or None when it is empty. A date that does not exist (30
    February, hour 25), an offset beyond a day, or a moment too near year 1 or 9999 to place
    in UTC is refused with `invalid_at`, never passed on to fail in a query. Without an
    offset the moment is in the portal's time zone, unless `offset_required` (the API)."""
    if not raw:
        return None
    try:
        moment = parse_datetime(raw)
        if moment is not None and timezone.is_naive(moment) and not offset_required:
            moment = timezone.make_aware(moment)
        if moment is not None and timezone.is_aware(moment):
            # In UTC: PostgreSQL refuses offsets beyond 15:59 that ISO-8601 allows.
            return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        pass
    shown = raw if len(raw) <= 40 else f"{raw[:40]}…"
    offset = " with its offset" if offset_required else ""
    raise BadRequest(
        f"'{shown}' is not a real date and time: give one in ISO-8601{offset}, such as {EXAMPLE}.",
        code="invalid_at",
    )
