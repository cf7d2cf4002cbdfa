"""The window a filing form suggests: the next one that the environment's freezes allow, so that
nobody computes UTC by hand or files into a freeze the service would refuse (rule 8)."""

from datetime import datetime, timedelta

from django.utils import timezone

from releases.models import Environment, FreezeWindow

WINDOW_LENGTH = timedelta(hours=4)
# The form takes a while to fill in and sign-offs take longer: start at the next full hour at
# least this far ahead.
LEAD_TIME = timedelta(minutes=30)


def _next_full_hour(moment: datetime) -> datetime:
    rounded = moment.replace(minute=0, second=0, microsecond=0)
    return rounded if rounded == moment else rounded + timedelta(hours=1)


def next_windows(
    environments: list[Environment], *, now: datetime | None = None
) -> dict[int, tuple[datetime, datetime]]:
    """`{environment_id: (start, end)}`: the first `WINDOW_LENGTH` from the next full hour that
    overlaps no standing freeze of the environment. One query for all the environments."""
    now = now or timezone.now()
    freezes: dict[int, list[FreezeWindow]] = {}
    for freeze in FreezeWindow.objects.filter(
        environment__in=environments, cancelled_at__isnull=True, ends_at__gt=now
    ).order_by("starts_at"):
        freezes.setdefault(freeze.environment_id, []).append(freeze)
    windows = {}
    for environment in environments:
        start = _next_full_hour(now + LEAD_TIME)
        for freeze in freezes.get(environment.pk, []):
            if freeze.starts_at < start + WINDOW_LENGTH and freeze.ends_at > start:
                start = _next_full_hour(freeze.ends_at)
        windows[environment.pk] = (start, start + WINDOW_LENGTH)
    return windows
