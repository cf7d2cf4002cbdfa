"""Builders for the gate, deployment, rollback and live tests: environments, builds, approved
change requests, a controlled clock and a deploy-and-report shortcut."""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from portal.models import Team
from registry.models import ModelVersion, RegisteredModel, Repository
from releases.models import (
    ChangeRequest,
    Decision,
    Environment,
    EnvironmentPolicy,
    SignOff,
    SignOffKind,
)
from releases.services.deployments import deployment_record_result, deployment_start
from releases.states import Kind, State


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Clock:
    """The tests' notion of now; services take it as `now=`."""

    now: datetime

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def make_environment(
    name: str,
    rank: int,
    *,
    needs_change_request: bool,
    teams: list[Team] = (),
    soak_source: Environment | None = None,
    soak_days: int = 0,
    needs_peer_review: bool = True,
) -> Environment:
    environment = Environment.objects.create(name=name, rank=rank)
    policy = EnvironmentPolicy.objects.create(
        environment=environment,
        version=1,
        needs_change_request=needs_change_request,
        needs_peer_review=needs_peer_review,
        soak_source=soak_source,
        soak_days=soak_days,
        created_by_name="system",
    )
    policy.approval_teams.set(teams)
    return environment


def make_model(name: str, team: Team) -> RegisteredModel:
    return RegisteredModel.objects.create(name=name, owner_team=team)


def make_build(model: RegisteredModel, version: str) -> ModelVersion:
    repository, _ = Repository.objects.get_or_create(url=f"https://git.example/{model.name}.git")
    return ModelVersion.objects.create(
        model=model,
        version=version,
        repository=repository,
        commit_sha=hashlib.sha1(f"{model.name}{version}".encode()).hexdigest(),  # noqa: S324
        build_id=f"build-{version}",
        artifact_uri=f"s3://models/{model.name}/{version}.tar.gz",
        artifact_sha256=digest(f"{model.name}:{version}"),
        created_by_name="ci-pipeline",
    )


def approved_change(
    *,
    model_version: ModelVersion,
    environment: Environment,
    requester,
    signers: list = (),
    window_start: datetime,
    hours: float = 48,
    kind: str = Kind.NORMAL,
    state: str | None = None,
) -> ChangeRequest:
    """A change request in its usable state, built directly; the change request services
    build the same thing in the lifecycle tests."""
    policy = environment.policies.order_by("-version").first()
    change = ChangeRequest.objects.create(
        kind=kind,
        state=state or (State.APPROVED if kind == Kind.NORMAL else State.AUTHORISED),
        model_version=model_version,
        environment=environment,
        requester=requester,
        team=requester.memberships.first().team,
        title=f"Release {model_version}",
        justification="Better recall.",
        rollback_plan="Roll back to the previous version.",
        window_start=window_start,
        window_end=window_start + timedelta(hours=hours),
        incident_ref="INC-1" if kind == Kind.EMERGENCY else "",
        content_digest=digest(f"{model_version.pk}:{environment.pk}"),
        policy=policy,
    )
    for signer in signers:
        membership = signer.memberships.first()
        SignOff.objects.create(
            change_request=change,
            kind=(
                SignOffKind.EMERGENCY_AUTHORISATION
                if kind == Kind.EMERGENCY
                else SignOffKind.APPROVAL
            ),
            team=membership.team,
            signer=signer,
            decision=Decision.APPROVE,
            meaning=f"I approve {change.number} on behalf of {membership.team.name}",
            content_digest=change.content_digest,
            policy=policy,
            signed_at=window_start,
        )
    return change


def deploy(*, actor, environment, model_version, clock: Clock, change_request=None, succeed=True):
    """Start a deployment and report its result one minute later."""
    deployment, _ = deployment_start(
        actor=actor,
        environment=environment,
        model_version=model_version,
        change_request=change_request,
        now=clock.now,
    )
    clock.advance(minutes=1)
    return deployment_record_result(
        actor=actor,
        deployment=deployment,
        status="succeeded" if succeed else "failed",
        now=clock.now,
    )
