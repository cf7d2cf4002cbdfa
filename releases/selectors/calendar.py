"""The change calendar: planned change windows, freezes, maintenance windows, deployments and
rollbacks over a period, for the calendar page (week and month) and the iCalendar feeds.

One query per kind of entry whatever the number of change requests and deployments (plus two
for the policies in force when the calendar is read for teams): the rows are those whose time
falls in the period, read on the `cr_window` and `deployment_started` indexes. A period with
more deployments than `DEPLOYMENT_LIMIT` shows the first ones and says so."""

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Q, TextChoices
from django.urls import reverse
from django.utils import timezone

from portal.models import Membership, Team
from releases.models import (
    CalendarFeed,
    ChangeRequest,
    Deployment,
    DeploymentKind,
    Environment,
    FreezeWindow,
    MaintenanceWindow,
)
from releases.selectors.gate import DEAD_STATES
from releases.selectors.policy import environment_policies_current
from releases.states import Kind, State

DEPLOYMENT_LIMIT = 500
# The drafts nobody has asked for yet, and the changes that will never happen, are not planned.
UNPLANNED_STATES = frozenset(DEAD_STATES | {State.DRAFT})


class EntryKind(TextChoices):
    CHANGE = "change", "Change window"
    EMERGENCY = "emergency", "Emergency change"
    FREEZE = "freeze", "Freeze"
    MAINTENANCE = "maintenance", "Maintenance window"
    DEPLOYMENT = "deployment", "Deployment"
    ROLLBACK = "rollback", "Rollback"


@dataclass(frozen=True)
class CalendarFilters:
    """What the calendar page is asked for: names as they appear in its address."""

    environment: str = ""
    team: str = ""
    model: str = ""
    kind: str = ""


@dataclass(frozen=True)
class CalendarScope:
    """Whose calendar: changes filed by, or to be signed by, one of `team_ids` (the approval
    teams of the policy in force in the change's environment), or requested by `requester_id`;
    deployments of those teams' models. Freezes and maintenance concern everyone."""

    team_ids: frozenset[int] = frozenset()
    requester_id: int | None = None

    @property
    def everything(self) -> bool:
        return not self.team_ids and self.requester_id is None


@dataclass(frozen=True)
class CalendarEntry:
    kind: str
    uid: str
    starts_at: datetime
    ends_at: datetime
    summary: str
    environment: str
    team: str
    model: str
    status: str
    url: str
    description: str

    @property
    def kind_label(self) -> str:
        return EntryKind(self.kind).label

    def covers(self, day_start: datetime, day_end: datetime) -> bool:
        return self.starts_at < day_end and self.ends_at > day_start


@dataclass(frozen=True)
class CalendarEntries:
    entries: list[CalendarEntry]
    # True when the period held more deployments than were read.
    deployments_truncated: bool


def _change_entry(change: ChangeRequest) -> CalendarEntry:
    version = change.model_version
    emergency = change.kind == Kind.EMERGENCY
    summary = f"{change.number} {version.model.name} {version.version} → {change.environment.name}"
    return CalendarEntry(
        kind=EntryKind.EMERGENCY if emergency else EntryKind.CHANGE,
        uid=f"change-request-{change.pk}",
        starts_at=change.window_start,
        ends_at=change.window_end,
        summary=summary,
        environment=change.environment.name,
        team=change.team.name,
        model=version.model.name,
        status=change.get_state_display(),
        url=reverse("releases:change-request", args=[change.number]),
        description=(
            f"{change.title}\n{change.get_kind_display()} change, "
            f"{change.get_state_display().lower()}; requested by {change.requester.username} "
            f"({change.team.name})."
        ),
    )


def _deployment_entry(deployment: Deployment) -> CalendarEntry:
    version = deployment.model_version
    rollback = deployment.kind == DeploymentKind.ROLLBACK
    environment = deployment.environment.name
    under = f" under CR-{deployment.change_request_id}" if deployment.change_request_id else ""
    if rollback:
        summary = f"Rollback of {version.model.name} to {version.version} in {environment}"
    else:
        summary = f"{version.model.name} {version.version} deployed to {environment}{under}"
    ends = deployment.finished_at or deployment.started_at
    return CalendarEntry(
        kind=EntryKind.ROLLBACK if rollback else EntryKind.DEPLOYMENT,
        uid=f"deployment-{deployment.pk}",
        starts_at=deployment.started_at,
        ends_at=max(ends, deployment.started_at + timedelta(minutes=1)),
        summary=summary,
        environment=environment,
        team=deployment.model.owner_team.name,
        model=version.model.name,
        status=deployment.get_status_display(),
        url=reverse("releases:deployment", args=[deployment.pk]),
        description=(
            f"{deployment.get_kind_display()} by {deployment.started_by_name}: "
            f"{deployment.get_status_display().lower()}."
            + (f"\nReason: {deployment.reason}" if deployment.reason else "")
        ),
    )


def _freeze_entry(freeze: FreezeWindow) -> CalendarEntry:
    return CalendarEntry(
        kind=EntryKind.FREEZE,
        uid=f"freeze-{freeze.pk}",
        starts_at=freeze.starts_at,
        ends_at=freeze.ends_at,
        summary=f"Freeze of {freeze.environment.name}: {freeze.reason}",
        environment=freeze.environment.name,
        team="",
        model="",
        status="In effect",
        url=reverse("releases:freezes"),
        description=(
            f"No normal change to {freeze.environment.name} is deployed in this freeze "
            f"(set by {freeze.created_by_name})."
        ),
    )


def _maintenance_entry(window: MaintenanceWindow) -> CalendarEntry:
    return CalendarEntry(
        kind=EntryKind.MAINTENANCE,
        uid=f"maintenance-{window.pk}",
        starts_at=window.starts_at,
        ends_at=window.ends_at,
        summary=f"Maintenance of {window.environment.name}: {window.title}",
        environment=window.environment.name,
        team="",
        model="",
        status="Planned",
        url=reverse("releases:calendar"),
        description=f"Planned by {window.created_by_name}.",
    )


def _environments_signed_by(team_ids: frozenset[int]) -> list[int]:
    """The environments whose policy in force names one of the teams as an approval team."""
    return [
        environment_id
        for environment_id, policy in environment_policies_current().items()
        if any(team.pk in team_ids for team in policy.approval_teams.all())
    ]


def calendar_entries(
    *,
    start: datetime,
    end: datetime,
    filters: CalendarFilters = CalendarFilters(),
    scope: CalendarScope = CalendarScope(),
    deployment_limit: int = DEPLOYMENT_LIMIT,
) -> CalendarEntries:
    """Everything on the calendar between `start` and `end`, earliest first. A filter that
    names nothing known matches nothing. A team filter narrows the scope to that team."""
    kinds = {filters.kind} if filters.kind else set(EntryKind.values)
    team_ids = scope.team_ids
    if filters.team:
        wanted = set(Team.objects.filter(slug=filters.team).values_list("pk", flat=True))
        team_ids = frozenset(wanted & team_ids if team_ids else wanted) or frozenset({0})
        scope = CalendarScope(team_ids=team_ids, requester_id=None)
    entries: list[CalendarEntry] = []

    # A standard change has its planned window like a normal one (a template has none).
    change_kinds = {Kind.NORMAL, Kind.STANDARD} if EntryKind.CHANGE in kinds else set()
    change_kinds |= {Kind.EMERGENCY} if EntryKind.EMERGENCY in kinds else set()
    if change_kinds:
        changes = (
            ChangeRequest.objects.filter(
                window_end__gt=start, window_start__lt=end, kind__in=change_kinds
            )
            .exclude(state__in=UNPLANNED_STATES)
            .select_related("model_version__model", "environment", "team", "requester")
            .only(
                "kind",
                "state",
                "title",
                "window_start",
                "window_end",
                "model_version__version",
                "model_version__model__name",
                "environment__name",
                "team__name",
                "requester__username",
            )
        )
        if filters.environment:
            changes = changes.filter(environment__name=filters.environment)
        if filters.model:
            changes = changes.filter(model_version__model__name=filters.model)
        if not scope.everything:
            mine = Q(team_id__in=scope.team_ids) | Q(
                environment_id__in=_environments_signed_by(scope.team_ids)
            )
            if scope.requester_id is not None:
                mine |= Q(requester_id=scope.requester_id)
            changes = changes.filter(mine)
        entries += [_change_entry(change) for change in changes.order_by("window_start", "pk")]

    truncated = False
    deployment_kinds = {DeploymentKind.DEPLOY} if EntryKind.DEPLOYMENT in kinds else set()
    deployment_kinds |= {DeploymentKind.ROLLBACK} if EntryKind.ROLLBACK in kinds else set()
    if deployment_kinds:
        deployments = Deployment.objects.filter(
            started_at__gte=start, started_at__lt=end, kind__in=deployment_kinds
        ).select_related("model_version__model", "environment", "model__owner_team")
        if filters.environment:
            deployments = deployments.filter(environment__name=filters.environment)
        if filters.model:
            deployments = deployments.filter(model__name=filters.model)
        if not scope.everything:
            deployments = deployments.filter(model__owner_team_id__in=scope.team_ids)
        rows = list(deployments.order_by("started_at", "pk")[: deployment_limit + 1])
        truncated = len(rows) > deployment_limit
        entries += [_deployment_entry(deployment) for deployment in rows[:deployment_limit]]

    # Freezes and maintenance concern everyone in their environment, whatever the model.
    for wanted_kind, model, to_entry in (
        (EntryKind.FREEZE, FreezeWindow, _freeze_entry),
        (EntryKind.MAINTENANCE, MaintenanceWindow, _maintenance_entry),
    ):
        if wanted_kind not in kinds:
            continue
        windows = model.objects.filter(
            cancelled_at__isnull=True, ends_at__gt=start, starts_at__lt=end
        ).select_related("environment")
        if filters.environment:
            windows = windows.filter(environment__name=filters.environment)
        entries += [to_entry(window) for window in windows.order_by("starts_at", "pk")]

    entries.sort(key=lambda entry: (entry.starts_at, entry.kind, entry.uid))
    return CalendarEntries(entries=entries, deployments_truncated=truncated)


# -- the page: a week or a month of days -------------------------------------------------------


@dataclass(frozen=True)
class CalendarDay:
    day: date
    entries: list[CalendarEntry]
    in_month: bool = True

    @property
    def is_today(self) -> bool:
        return self.day == timezone.localdate()


@dataclass(frozen=True)
class CalendarRow:
    """One line of the week view: an environment or a team, and its entries day by day."""

    label: str
    days: list[CalendarDay]


@dataclass(frozen=True)
class CalendarPage:
    view: str
    first: date
    last: date
    days: list[date]
    weeks: list[list[CalendarDay]]
    rows: list[CalendarRow]
    entries: list[CalendarEntry]
    deployments_truncated: bool
    previous: date
    next: date
    group: str


def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


def calendar_page(
    *, view: str, around: date, filters: CalendarFilters, group: str = "environment"
) -> CalendarPage:
    """A week (Monday to Sunday) or a month (its weeks, Monday first) around `around`, in the
    portal's time zone, with the week's entries in rows by environment or by team."""
    if view == "month":
        month_start = around.replace(day=1)
        next_month = (month_start + timedelta(days=32)).replace(day=1)
        first = month_start - timedelta(days=month_start.weekday())
        last = next_month - timedelta(days=1)
        last += timedelta(days=6 - last.weekday())
        previous = (month_start - timedelta(days=1)).replace(day=1)
        following = next_month
    else:
        view = "week"
        first = around - timedelta(days=around.weekday())
        last = first + timedelta(days=6)
        month_start = first
        previous, following = first - timedelta(days=7), first + timedelta(days=7)
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    found = calendar_entries(
        start=_local_midnight(first), end=_local_midnight(last + timedelta(days=1)), filters=filters
    )

    def on(day: date, entries: list[CalendarEntry]) -> list[CalendarEntry]:
        start = _local_midnight(day)
        end = _local_midnight(day + timedelta(days=1))
        return [entry for entry in entries if entry.covers(start, end)]

    calendar_days = [
        CalendarDay(day, on(day, found.entries), in_month=day.month == month_start.month)
        for day in days
    ]
    weeks = [calendar_days[index : index + 7] for index in range(0, len(calendar_days), 7)]
    rows = []
    if view == "week":
        key = (lambda e: e.team or "Every team") if group == "team" else (lambda e: e.environment)
        labels = sorted({key(entry) for entry in found.entries})
        if group != "team":
            ranks = dict(Environment.objects.values_list("name", "rank"))
            labels.sort(key=lambda name: (ranks.get(name, 0), name))
        for label in labels:
            mine = [entry for entry in found.entries if key(entry) == label]
            rows.append(CalendarRow(label, [CalendarDay(day, on(day, mine)) for day in days]))
    return CalendarPage(
        view=view,
        first=first,
        last=last,
        days=days,
        weeks=weeks,
        rows=rows,
        entries=found.entries,
        deployments_truncated=found.deployments_truncated,
        previous=previous,
        next=following,
        group="team" if group == "team" else "environment",
    )


# -- the feeds ----------------------------------------------------------------------------------

# What a subscribed calendar holds: the recent past and the months ahead.
FEED_PAST = timedelta(days=31)
FEED_AHEAD = timedelta(days=183)


def feed_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def calendar_feed_by_token(token: str) -> CalendarFeed | None:
    """The feed a token opens, if it is known and not revoked."""
    return (
        CalendarFeed.objects.select_related("user", "team")
        .filter(token_hash=feed_token_hash(token), revoked_at__isnull=True)
        .first()
    )


def calendar_feed_scope(feed: CalendarFeed) -> CalendarScope:
    """A team's feed: its changes and deployments and the changes it signs. A person's: those
    of their teams, and the changes they requested."""
    if feed.team_id is not None:
        return CalendarScope(team_ids=frozenset({feed.team_id}))
    teams = Membership.objects.filter(user_id=feed.user_id).values_list("team_id", flat=True)
    return CalendarScope(team_ids=frozenset(teams), requester_id=feed.user_id)


def calendar_feed_entries(feed: CalendarFeed, *, now: datetime | None = None) -> CalendarEntries:
    now = now or timezone.now()
    return calendar_entries(
        start=now - FEED_PAST, end=now + FEED_AHEAD, scope=calendar_feed_scope(feed)
    )


def calendar_feeds_of(user) -> tuple[CalendarFeed | None, list[tuple[Team, CalendarFeed | None]]]:
    """The person's own feed and, for each of their teams, the team's feed (None when none is
    issued): what the feeds page shows."""
    feeds = list(
        CalendarFeed.objects.filter(revoked_at__isnull=True).filter(
            Q(user=user) | Q(team__memberships__user=user)
        )
    )
    by_team = {feed.team_id: feed for feed in feeds if feed.team_id is not None}
    own = next((feed for feed in feeds if feed.user_id == user.pk), None)
    teams = Team.objects.filter(memberships__user=user).order_by("name")
    return own, [(team, by_team.get(team.pk)) for team in teams]
