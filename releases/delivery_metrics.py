"""Delivery metrics from the deployment ledger: the four DORA measures per environment and
model, and which version was live when.

The period is `[now - days, now]`; `now` is a parameter so that tests (and any report of a past
period) control the clock. Every number is read from `Deployment` rows as the services recorded
them; nothing is stored. Two queries answer any period and any history size: the deployments
that started, finished or succeeded in the period, and the deployment that was live in each
(environment, model) when the period began. Commit times come from the git mirrors, which are
not database queries. Statuses are read as the ledger holds them now: a report whose period
ended in the past still sees a rollback made after that end.

Definitions (also in docs/metrics.md, and shown on the page):

- **Deployment frequency**: successful deploy-kind deployments (`succeeded_at` in the period)
  per week, a week being seven days of the period (30 days are 4.29 weeks). A deployment later
  rolled back still counts: it did reach the environment. Rollbacks are not counted: they undo
  a change, they do not deliver one.
- **Lead time for changes**: for each of those deployments, from the commit time of its version
  to its `succeeded_at`; median and 90th percentile. The commit time is the committer date of
  the version's commit in the repository's git mirror (the moment the change entered the
  history; an author date can predate a rebase by weeks). Without a mirror holding the commit,
  the version's registration time stands in, and the page says how many lead times were
  measured that way. A commit dated after its deployment (a skewed clock) counts as zero.
- **Change failure rate**: of the deploy-kind deployments that finished in the period
  (`finished_at` in it: succeeded, failed or rolled back), the share that failed or were rolled
  back (status `failed` or `rolled_back`, or named by a rollback's `rollback_of`). Attempts
  still in flight are in neither count.
- **Time to restore**: for each of those failures, from its `finished_at` to the
  `succeeded_at` of the next successful deployment (deploy or rollback) in the same
  (environment, model); the median. A rollback of an attempt that never reported its result
  stamps the attempt finished at that moment, which is the moment it was superseded. "Next" is
  the ledger's order: succeeded later, or at the same instant but recorded later. A failure not
  yet followed by a success is counted as open and left out of the median.

Edge cases: a measure whose population is empty is `None` ("no data"), never zero: frequency
with no deploy-kind deployment started or finished in the period, lead time with no successful
deployment, failure rate with none finished, time to restore with no restored failure. The
median of an even count is the mean of the middle two; the 90th percentile is the nearest-rank
value (the smallest observed lead time with at least 90% of them at or below it), so it is
always a lead time that happened.
"""

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet
from git.exc import GitError
from gitdb.exc import ODBError

from registry import git
from registry.models import ModelVersion, RegisteredModel
from releases.models import Deployment, DeploymentKind, DeploymentStatus, Environment

PERIOD_DAYS = (30, 90, 365)
DEFAULT_PERIOD_DAYS = 90
WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime

    @classmethod
    def ending(cls, now: datetime, days: int) -> "Period":
        return cls(since=now - timedelta(days=days), until=now)

    @property
    def days(self) -> float:
        return (self.until - self.since) / timedelta(days=1)

    @property
    def weeks(self) -> float:
        return (self.until - self.since) / WEEK

    def __contains__(self, moment: datetime | None) -> bool:
        return moment is not None and self.since <= moment <= self.until


@dataclass(frozen=True)
class CommitTime:
    at: datetime
    from_git: bool


@dataclass(frozen=True)
class LeadTime:
    deployment: Deployment
    committed_at: datetime
    from_git: bool

    @property
    def duration(self) -> timedelta:
        return max(self.deployment.succeeded_at - self.committed_at, timedelta(0))


@dataclass(frozen=True)
class Restore:
    failure: Deployment
    restored_by: Deployment | None

    @property
    def failed_at(self) -> datetime:
        return self.failure.finished_at

    @property
    def duration(self) -> timedelta | None:
        if self.restored_by is None:
            return None
        return self.restored_by.succeeded_at - self.failed_at


@dataclass
class Measures:
    """The four measures over one set of deployments; `None` means no data."""

    period: Period
    attempts: int = 0
    succeeded: list[Deployment] = field(default_factory=list)
    finished: list[Deployment] = field(default_factory=list)
    failures: list[Deployment] = field(default_factory=list)
    lead_times: list[LeadTime] = field(default_factory=list)
    restores: list[Restore] = field(default_factory=list)

    @property
    def frequency(self) -> float | None:
        if not self.attempts:
            return None
        return len(self.succeeded) / self.period.weeks

    @property
    def lead_time_median(self) -> timedelta | None:
        return median([lead.duration for lead in self.lead_times])

    @property
    def lead_time_p90(self) -> timedelta | None:
        return nearest_rank([lead.duration for lead in self.lead_times], 90)

    @property
    def lead_times_from_registration(self) -> int:
        return sum(1 for lead in self.lead_times if not lead.from_git)

    @property
    def change_failure_rate(self) -> float | None:
        if not self.finished:
            return None
        return len(self.failures) / len(self.finished)

    @property
    def time_to_restore_median(self) -> timedelta | None:
        return median([r.duration for r in self.restores if r.duration is not None])

    @property
    def open_failures(self) -> int:
        return sum(1 for r in self.restores if r.restored_by is None)


@dataclass(frozen=True)
class Band:
    """One version live in (environment, model) from `start` to `end`, clipped to the period."""

    deployment: Deployment
    start: datetime
    end: datetime
    still_live: bool

    @property
    def version(self) -> ModelVersion:
        return self.deployment.model_version

    @property
    def rolled_back(self) -> bool:
        return self.deployment.status == DeploymentStatus.ROLLED_BACK


@dataclass
class Lane:
    environment: Environment
    model: RegisteredModel
    bands: list[Band]
    measures: Measures


@dataclass(frozen=True)
class WeekCount:
    start: datetime
    end: datetime
    succeeded: int
    failed: int


@dataclass
class DeliveryReport:
    period: Period
    measures: Measures
    weeks: list[WeekCount]
    lanes: list[Lane]


def median(values: list[timedelta]) -> timedelta | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def nearest_rank(values: list[timedelta], percent: int) -> timedelta | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(percent / 100 * len(ordered)), 1) - 1]


def _scoped(environment: Environment | None, model: RegisteredModel | None) -> QuerySet[Deployment]:
    queryset = Deployment.objects.select_related(
        "environment", "model", "model_version__repository"
    )
    if environment is not None:
        queryset = queryset.filter(environment=environment)
    if model is not None:
        queryset = queryset.filter(model=model)
    return queryset


def _in_period(queryset: QuerySet[Deployment], period: Period) -> list[Deployment]:
    since = period.since
    return list(
        queryset.filter(started_at__lte=period.until)
        .filter(Q(started_at__gte=since) | Q(finished_at__gte=since) | Q(succeeded_at__gte=since))
        .order_by("pk")
    )


def _live_at(queryset: QuerySet[Deployment], moment: datetime) -> list[Deployment]:
    """What was live in each (environment, model) at `moment`: the latest success at or before
    it, with no later one (ties go to the later record), in one query for every pair."""
    later = Deployment.objects.filter(
        environment=OuterRef("environment"),
        model=OuterRef("model"),
        succeeded_at__lte=moment,
    ).filter(
        Q(succeeded_at__gt=OuterRef("succeeded_at"))
        | Q(succeeded_at=OuterRef("succeeded_at"), pk__gt=OuterRef("pk"))
    )
    return list(queryset.filter(succeeded_at__lte=moment).exclude(Exists(later)))


def commit_times(versions: Iterable[ModelVersion]) -> dict[int, CommitTime]:
    """When each version's commit was made, by version id: the committer date from the
    repository's mirror (opened once per repository), else the registration time."""
    by_repository: dict[int, list[ModelVersion]] = defaultdict(list)
    for version in versions:
        by_repository[version.repository_id].append(version)
    times: dict[int, CommitTime] = {}
    for group in by_repository.values():
        repo = git.open_mirror(group[0].repository)
        for version in group:
            committed = None
            if repo is not None:
                try:
                    committed = repo.commit(version.commit_sha).committed_datetime
                # A commit the mirror lacks, or a damaged mirror, must not take the page down.
                except (ValueError, ODBError, GitError):
                    committed = None
            times[version.pk] = (
                CommitTime(at=committed, from_git=True)
                if committed is not None
                else CommitTime(at=version.created_at, from_git=False)
            )
        if repo is not None:
            repo.close()
    return times


def _rolled_back_ids(deployments: Iterable[Deployment]) -> set[int]:
    return {d.rollback_of_id for d in deployments if d.rollback_of_id is not None}


def _is_failure(deployment: Deployment, rolled_back: set[int]) -> bool:
    return (
        deployment.status in (DeploymentStatus.FAILED, DeploymentStatus.ROLLED_BACK)
        or deployment.pk in rolled_back
    )


def _ledger_order(deployment: Deployment) -> tuple[datetime, int]:
    return (deployment.succeeded_at, deployment.pk)


def measures_of(
    deployments: list[Deployment],
    *,
    period: Period,
    commits: dict[int, CommitTime],
    rolled_back: set[int],
) -> Measures:
    """The four measures over `deployments` (one or several (environment, model) pairs).
    `rolled_back` holds the ids any rollback names; `commits` the commit time of each version."""
    measures = Measures(period=period)
    successes: dict[tuple[int, int], list[Deployment]] = defaultdict(list)
    for deployment in deployments:
        if deployment.succeeded_at in period:
            successes[deployment.environment_id, deployment.model_id].append(deployment)
        if deployment.kind != DeploymentKind.DEPLOY:
            continue
        if deployment.started_at in period or deployment.finished_at in period:
            measures.attempts += 1
        if deployment.succeeded_at in period:
            measures.succeeded.append(deployment)
            commit = commits[deployment.model_version_id]
            measures.lead_times.append(LeadTime(deployment, commit.at, commit.from_git))
        if deployment.finished_at in period:
            measures.finished.append(deployment)
            if _is_failure(deployment, rolled_back):
                measures.failures.append(deployment)
    for pair in successes.values():
        pair.sort(key=_ledger_order)
    for failure in measures.failures:
        after = (failure.finished_at, failure.pk)
        candidates = successes[failure.environment_id, failure.model_id]
        restored_by = next(
            (d for d in candidates if d.pk != failure.pk and _ledger_order(d) > after), None
        )
        measures.restores.append(Restore(failure=failure, restored_by=restored_by))
    return measures


def _weeks(measures: Measures, period: Period) -> list[WeekCount]:
    """Seven-day bins ending at `now`, oldest first; the oldest is shorter when the period is
    not a whole number of weeks."""
    count = math.ceil(period.days / 7)
    succeeded, failed = [0] * count, [0] * count

    def back(moment: datetime) -> int:
        return min(int((period.until - moment) / WEEK), count - 1)

    for deployment in measures.succeeded:
        succeeded[back(deployment.succeeded_at)] += 1
    for deployment in measures.failures:
        failed[back(deployment.finished_at)] += 1
    return [
        WeekCount(
            start=max(period.until - (index + 1) * WEEK, period.since),
            end=period.until - index * WEEK,
            succeeded=succeeded[index],
            failed=failed[index],
        )
        for index in range(count - 1, -1, -1)
    ]


def _bands(history: list[Deployment], period: Period) -> list[Band]:
    """Which version was live when: each success holds until the next one (a deployment later
    rolled back still answers for the moments before its rollback)."""
    live = sorted(
        (d for d in history if d.succeeded_at is not None and d.succeeded_at <= period.until),
        key=_ledger_order,
    )
    bands = []
    for index, deployment in enumerate(live):
        following = live[index + 1] if index + 1 < len(live) else None
        start = max(deployment.succeeded_at, period.since)
        end = following.succeeded_at if following else period.until
        if end > start or following is None:
            bands.append(Band(deployment, start, end, still_live=following is None))
    return bands


def delivery_report(
    *,
    now: datetime,
    days: int = DEFAULT_PERIOD_DAYS,
    environment: Environment | None = None,
    model: RegisteredModel | None = None,
) -> DeliveryReport:
    """The four measures for the selection (every environment or model when not given), the
    same per (environment, model) lane with its timeline, and the weekly counts. Two queries."""
    period = Period.ending(now, days)
    scoped = _scoped(environment, model)
    recent = _in_period(scoped, period)
    seen = {d.pk for d in recent}
    earlier = [d for d in _live_at(scoped, period.since) if d.pk not in seen]
    commits = commit_times({d.model_version_id: d.model_version for d in recent}.values())
    rolled_back = _rolled_back_ids(recent)
    measures = measures_of(recent, period=period, commits=commits, rolled_back=rolled_back)

    pairs: dict[tuple[int, int], list[Deployment]] = defaultdict(list)
    for deployment in earlier + recent:
        pairs[deployment.environment_id, deployment.model_id].append(deployment)
    lanes = [
        Lane(
            environment=history[0].environment,
            model=history[0].model,
            bands=_bands(history, period),
            measures=measures_of(
                [d for d in history if d.pk in seen],
                period=period,
                commits=commits,
                rolled_back=rolled_back,
            ),
        )
        for history in pairs.values()
    ]
    lanes.sort(key=lambda lane: (lane.environment.rank, lane.environment.name, lane.model.name))
    return DeliveryReport(
        period=period, measures=measures, weeks=_weeks(measures, period), lanes=lanes
    )
