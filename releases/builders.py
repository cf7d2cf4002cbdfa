"""Builders of release records, shared by the demo, the benchmarks and the tests: the three
environments with their policies, change requests filed and signed, deployments started and
reported, a build released to test. Everything goes through the services, as the people and the
pipeline would, so every record has its audit event and passes the rules it is built under.

Where time matters a builder takes it explicitly (`now=`, or a `Clock` that it moves on), so a
history can be written at past moments; none of them patches Django's clock.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from organisation.demo import DEMO_PASSWORD
from portal.models import Team
from registry.models import ModelVersion
from releases.models import (
    ChangeRequest,
    Deployment,
    DeploymentKind,
    DeploymentStatus,
    Environment,
    EnvironmentPolicy,
    SignOff,
)
from releases.services import change_requests, deployments, policy
from releases.states import Kind

APPROVAL_TEAMS = ["model-risk", "release-management", "platform-operations"]


@dataclass
class Clock:
    """A notion of now that a test or a history moves on; services take it as `now=`."""

    now: datetime

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def at(self, **delta: float) -> "Clock":
        """Another clock, this far from this one."""
        return Clock(self.now + timedelta(**delta))


def environments_create() -> dict[str, Environment]:
    """dev needs no change request, test a peer review, prod a peer review then the three
    approval teams, seven days of soak in test, emergencies with a 72-hour retrospective. What
    exists is left as it is."""
    teams = {team.slug: team for team in Team.objects.filter(slug__in=APPROVAL_TEAMS)}
    wanted = [
        ("dev", 1, "Shared development cluster.", {"needs_change_request": False}),
        ("test", 2, "Integration test with production-like data.", {}),
        (
            "prod",
            3,
            "Production scoring.",
            {"approval_teams": [teams[slug] for slug in APPROVAL_TEAMS], "soak_days": 7},
        ),
    ]
    environments: dict[str, Environment] = {}
    for name, rank, description, rules in wanted:
        environment = Environment.objects.filter(name=name).first() or (
            policy.environment_create(actor=None, name=name, rank=rank, description=description)
        )
        environments[name] = environment
        if EnvironmentPolicy.objects.filter(environment=environment).exists():
            continue
        rules = {"approval_teams": [], **rules}
        if name == "dev":
            rules["needs_peer_review"] = False
        if name == "prod":
            rules.update(soak_source=environments["test"], retrospective_hours=72)
        policy.environment_policy_change(actor=None, environment=environment, **rules)
    return environments


def change_fields(
    model_version: ModelVersion,
    environment: Environment,
    *,
    now: datetime | None = None,
    **overrides,
) -> dict:
    """What a requester writes for a normal change: a four-hour window two days after `now`."""
    start = (now or timezone.now()) + timedelta(days=2)
    fields = {
        "model_version": model_version,
        "environment": environment,
        "title": f"Release {model_version}",
        "justification": "Better recall on card-not-present fraud.",
        "risk_impact": "Scores shift for 2% of transactions.",
        "test_evidence": "Backtest on October: recall +4 points.",
        "rollback_plan": "Roll back to the previous version.",
        "window_start": start,
        "window_end": start + timedelta(hours=4),
    }
    return {**fields, **overrides}


def sign(
    signer,
    change_request: ChangeRequest,
    decision: str = "approve",
    *,
    password: str = DEMO_PASSWORD,
    content_digest: str = "",
    comment: str = "",
    team: Team | None = None,
    on_behalf_of=None,
    now: datetime | None = None,
) -> SignOff:
    """Sign as `signer` with their password and the content digest they are shown (a rejection
    says why); as the delegate of the absent `on_behalf_of` when given."""
    change_request.refresh_from_db()
    return change_requests.change_request_sign(
        actor=signer,
        change_request=change_request,
        decision=decision,
        comment=comment or ("" if decision == "approve" else "Not like this."),
        team=team,
        on_behalf_of=on_behalf_of,
        password=password,
        content_digest=content_digest or change_request.content_digest,
        now=now,
    )


def file_change(
    *,
    requester,
    model_version: ModelVersion,
    environment: Environment,
    signers: list = (),
    kind: str = Kind.NORMAL,
    window_start: datetime | None = None,
    hours: float = 48,
    now: datetime | None = None,
    **fields,
) -> ChangeRequest:
    """File (create and submit) a change request and have `signers` sign it in order: the peer
    first, then the approval teams; for an emergency, the emergency approver. A normal change's
    window opens at `window_start` (default two days after `now`) for `hours`; an emergency has
    an incident reference instead."""
    emergency = kind == Kind.EMERGENCY
    start = window_start or (now or timezone.now()) + timedelta(days=2)
    written = {
        "justification": "Fraud losses since the scheme change." if emergency else "Better recall.",
        "window_start": None if emergency else start,
        "window_end": None if emergency else start + timedelta(hours=hours),
        "incident_ref": "INC-4711" if emergency else "",
        **fields,
    }
    change = change_requests.change_request_file(
        actor=requester,
        kind=kind,
        now=now,
        **change_fields(model_version, environment, now=now, **written),
    )
    for signer in signers:
        sign(signer, change, now=now)
    change.refresh_from_db()
    return change


def deploy(
    *,
    actor,
    environment: Environment,
    model_version: ModelVersion,
    clock: Clock,
    change_request: ChangeRequest | None = None,
    succeed: bool = True,
    took: timedelta = timedelta(minutes=1),
    detail: str = "",
    **start,
) -> Deployment:
    """Start a deployment at the clock's now (the gate decides) and report its result, with
    `detail`, `took` later, leaving the clock there."""
    deployment, _ = deployments.deployment_start(
        actor=actor,
        environment=environment,
        model_version=model_version,
        change_request=change_request,
        now=clock.now,
        **start,
    )
    clock.advance(seconds=took.total_seconds())
    return deployments.deployment_record_result(
        actor=actor,
        deployment=deployment,
        status="succeeded" if succeed else "failed",
        detail=detail,
        now=clock.now,
    )


def emergency_deployed(
    *,
    requester,
    authoriser,
    pipeline,
    model_version: ModelVersion,
    environment: Environment,
    clock: Clock,
) -> ChangeRequest:
    """An emergency change filed at the clock's now, authorised by `authoriser` and deployed
    through `pipeline` (rule 11): its retrospective reviews are then due."""
    change = file_change(
        requester=requester,
        model_version=model_version,
        environment=environment,
        signers=[authoriser],
        kind=Kind.EMERGENCY,
        now=clock.now,
    )
    deploy(
        actor=pipeline,
        environment=environment,
        model_version=model_version,
        change_request=change,
        clock=clock,
    )
    change.refresh_from_db()
    return change


def deployment_row(
    *,
    environment: Environment,
    model_version: ModelVersion,
    change_request: ChangeRequest | None = None,
    kind: str = DeploymentKind.DEPLOY,
) -> Deployment:
    """A successful deployment written straight into the table: no gate, no audit event. Only
    for tests of what follows a deployment (the change request's hand-over, commits already
    live); everything else deploys with `deploy`."""
    now = timezone.now()
    return Deployment.objects.create(
        environment=environment,
        model=model_version.model,
        model_version=model_version,
        change_request=change_request,
        kind=kind,
        status=DeploymentStatus.SUCCEEDED,
        started_by_name="ci-pipeline",
        started_at=now,
        finished_at=now,
        succeeded_at=now,
    )


def release_to_test(
    envs: dict[str, Environment],
    version: ModelVersion,
    pipeline,
    clock: Clock,
    requester,
    peer,
    succeed: bool = True,
    *,
    pause: timedelta = timedelta(hours=1),
) -> Deployment:
    """File a change for `version` in test, have the peer approve it, deploy it through
    `pipeline` (a service account), then let `pause` pass."""
    change = file_change(
        model_version=version,
        environment=envs["test"],
        requester=requester,
        signers=[peer],
        window_start=clock.now,
    )
    deployment = deploy(
        actor=pipeline,
        environment=envs["test"],
        model_version=version,
        change_request=change,
        clock=clock,
        succeed=succeed,
    )
    clock.advance(seconds=pause.total_seconds())
    return deployment


def policy_amended(environment: Environment, **changes) -> EnvironmentPolicy:
    """The next policy version of `environment`: the approval teams, peer review and soak of the
    version in force, with `changes` (any other rule takes the service's default)."""
    current = environment.policies.order_by("-version").first()
    return policy.environment_policy_change(
        actor=None,
        environment=environment,
        **{
            "approval_teams": list(current.approval_teams.all()),
            "needs_peer_review": current.needs_peer_review,
            "soak_source": current.soak_source,
            "soak_days": current.soak_days,
            **changes,
        },
    )
