"""The risk score of a change request (issue 18, rule 18): named factors, each worth points,
summed into a score that a level names. Computed once, at submission, and stored with the change
and the policy version it cites; the policy maps the level to the path the change takes
(`EnvironmentPolicy.teams_for`, standard changes for low risk only).

Every weight and threshold is one of the constants below, and only there (docs/change-requests.md,
Risk, explains them in words): the model's tier in the inventory, the kind of change, the size of
the diff since what is live (files and lines, from git), the test evidence (soak in the policy's
source, the commit's pipeline), and the track record of the model and of the requesting team over
the last `TRACK_RECORD_DAYS` (rollbacks, emergencies, unauthorised changes, change failure rate),
each capped at `TRACK_RECORD_CAP`. Under `LOW_BELOW` the risk is low, from `HIGH_FROM` high.
"""

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Exists, OuterRef, Q

from portal.models import Team
from registry import git
from registry.models import ModelVersion, RegisteredModel
from releases.models import (
    ChangeRequest,
    Deployment,
    DeploymentKind,
    DeploymentStatus,
    EnvironmentPolicy,
    RiskLevel,
    UnauthorisedChange,
)
from releases.selectors.gate import gate_question_resolve
from releases.selectors.live import live_deployment
from releases.states import Kind

TRACK_RECORD_DAYS = 90
TIER_POINTS = {1: 30, 2: 15, 3: 0}
KIND_POINTS = {Kind.EMERGENCY: 25, Kind.NORMAL: 10, Kind.STANDARD_TEMPLATE: 10, Kind.STANDARD: 0}
SMALL_DIFF = (5, 200)
MEDIUM_DIFF = (20, 1000)
DIFF_POINTS = {"small": 0, "medium": 10, "large": 20, "unknown": 15, "first": 10}
SOAK_MISSING_POINTS = 10
PIPELINE_POINTS = {"success": 0, None: 5}
PIPELINE_NOT_GREEN_POINTS = 15
ROLLBACK_POINTS = 10
EMERGENCY_POINTS = 5
UNAUTHORISED_POINTS = 15
FAILURE_RATE_LIMIT = 0.25
FAILURE_RATE_POINTS = 10
TRACK_RECORD_CAP = 40
LOW_BELOW = 30
HIGH_FROM = 60


@dataclass(frozen=True)
class Factor:
    """One named factor: what was measured (`value`, in words) and the points it adds."""

    name: str
    value: str
    points: int


@dataclass(frozen=True)
class TrackRecord:
    finished: int
    failed: int
    rollbacks: int
    emergencies: int
    unauthorised: int

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.finished if self.finished else None

    @property
    def points(self) -> int:
        rate = self.failure_rate
        points = (
            self.rollbacks * ROLLBACK_POINTS
            + self.emergencies * EMERGENCY_POINTS
            + self.unauthorised * UNAUTHORISED_POINTS
            + (FAILURE_RATE_POINTS if rate is not None and rate > FAILURE_RATE_LIMIT else 0)
        )
        return min(points, TRACK_RECORD_CAP)

    def words(self) -> str:
        rate = self.failure_rate
        return (
            f"{self.rollbacks} rollback(s), {self.emergencies} emergency change(s), "
            f"{self.unauthorised} unauthorised change(s), change failure rate "
            + (f"{rate:.0%} of {self.finished}" if rate is not None else "no data")
        )


@dataclass(frozen=True)
class RiskScore:
    score: int
    level: str
    factors: list[Factor]
    policy_version: int

    def factors_data(self) -> list[dict]:
        return [asdict(factor) for factor in self.factors]


def risk_level(score: int) -> str:
    if score < LOW_BELOW:
        return RiskLevel.LOW
    return RiskLevel.MEDIUM if score < HIGH_FROM else RiskLevel.HIGH


def track_record(
    *, model: RegisteredModel | None = None, team: Team | None = None, now: datetime
) -> TrackRecord:
    """The last 90 days of the ledger for one model, or for the changes of one team: failures
    as delivery_metrics.py counts them (failed, rolled back, or named by a rollback), the
    rollbacks made, the emergency changes filed, and the unauthorised changes flagged."""
    since = now - timedelta(days=TRACK_RECORD_DAYS)
    if model is not None:
        deployments = Deployment.objects.filter(model=model)
        emergencies = ChangeRequest.objects.filter(model_version__model=model)
        flags = UnauthorisedChange.objects.filter(model=model)
    else:
        deployments = Deployment.objects.filter(
            Q(change_request__team=team) | Q(rollback_of__change_request__team=team)
        )
        emergencies = ChangeRequest.objects.filter(team=team)
        flags = UnauthorisedChange.objects.filter(model__owner_team=team)
    rolled_back = Deployment.objects.filter(rollback_of=OuterRef("pk"))
    counted = deployments.annotate(named_by_rollback=Exists(rolled_back)).aggregate(
        finished=Count(
            "pk", filter=Q(kind=DeploymentKind.DEPLOY, finished_at__gte=since, finished_at__lte=now)
        ),
        failed=Count(
            "pk",
            filter=Q(kind=DeploymentKind.DEPLOY, finished_at__gte=since, finished_at__lte=now)
            & (
                Q(status__in=[DeploymentStatus.FAILED, DeploymentStatus.ROLLED_BACK])
                | Q(named_by_rollback=True)
            ),
        ),
        rollbacks=Count(
            "pk",
            filter=Q(kind=DeploymentKind.ROLLBACK, succeeded_at__gte=since, succeeded_at__lte=now),
        ),
    )
    return TrackRecord(
        finished=counted["finished"],
        failed=counted["failed"],
        rollbacks=counted["rollbacks"],
        emergencies=emergencies.filter(
            kind=Kind.EMERGENCY, submitted_at__gte=since, submitted_at__lte=now
        ).count(),
        unauthorised=flags.filter(detected_at__gte=since, detected_at__lte=now).count(),
    )


def _diff_factor(change_request: ChangeRequest, now: datetime) -> Factor:
    version: ModelVersion = change_request.model_version
    live = live_deployment(environment=change_request.environment, model=version.model, at=now)
    name = "Size of the diff since what is live"
    if live is None:
        return Factor(name, "nothing is live there yet", DIFF_POINTS["first"])
    stat = None
    if live.model_version.repository_id == version.repository_id:
        stat = git.diff_stat(version.repository, live.model_version.commit_sha, version.commit_sha)
    if stat is None:
        return Factor(
            name, f"not readable from git against {live.model_version}", DIFF_POINTS["unknown"]
        )
    files, lines = len(stat.paths), stat.lines
    if files <= SMALL_DIFF[0] and lines <= SMALL_DIFF[1]:
        size = "small"
    elif files <= MEDIUM_DIFF[0] and lines <= MEDIUM_DIFF[1]:
        size = "medium"
    else:
        size = "large"
    return Factor(
        name, f"{files} file(s), {lines} line(s) since {live.model_version}", DIFF_POINTS[size]
    )


def _evidence_factor(change_request: ChangeRequest, now: datetime) -> Factor:
    version = change_request.model_version
    question = gate_question_resolve(
        environment=change_request.environment,
        model=version.model,
        version=version.version,
        now=now,
    )
    soak = question.soak
    points = 0
    if soak is None:
        soak_words = "no soak asked"
    elif soak.holds:
        soak_words = f"soaked {soak.days} day(s) in {soak.source.name}"
    elif soak.earliest_allowed_at is not None:
        soak_words = f"soaking in {soak.source.name}"
    else:
        soak_words = f"not live in {soak.source.name}"
        points += SOAK_MISSING_POINTS
    status = question.pipeline_status
    points += PIPELINE_POINTS.get(status, PIPELINE_NOT_GREEN_POINTS)
    return Factor("Test evidence", f"{soak_words}; pipeline {status or 'not reported'}", points)


def risk_score(
    *, change_request: ChangeRequest, policy: EnvironmentPolicy, now: datetime
) -> RiskScore:
    """The score of `change_request` as it is submitted under `policy`, from its factors."""
    model = change_request.model_version.model
    model_record = track_record(model=model, now=now)
    team_record = track_record(team=change_request.team, now=now)
    factors = [
        Factor("Model tier", f"tier {model.risk_tier}", TIER_POINTS[model.risk_tier]),
        Factor(
            "Change type", Kind(change_request.kind).label.lower(), KIND_POINTS[change_request.kind]
        ),
        _diff_factor(change_request, now),
        _evidence_factor(change_request, now),
        Factor(
            f"Track record of {model.name} ({TRACK_RECORD_DAYS} days)",
            model_record.words(),
            model_record.points,
        ),
        Factor(
            f"Track record of {change_request.team.name} ({TRACK_RECORD_DAYS} days)",
            team_record.words(),
            team_record.points,
        ),
    ]
    score = sum(factor.points for factor in factors)
    return RiskScore(
        score=score, level=risk_level(score), factors=factors, policy_version=policy.version
    )
