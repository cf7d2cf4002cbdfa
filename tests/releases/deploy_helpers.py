"""Builders for the gate, deployment, rollback and live tests, all through the services: builds
registered in the registry, change requests filed and signed, deployments started and reported,
with a controlled clock."""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from organisation.demo import DEMO_PASSWORD
from registry import services as registry
from registry.models import ModelVersion, RegisteredModel
from releases.models import ChangeRequest, Deployment, Environment
from releases.services import change_requests
from releases.services.deployments import deployment_record_result, deployment_start
from releases.states import Kind

REPOSITORY = "https://git.example.com/data-science/models"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Clock:
    """The tests' notion of now; services take it as `now=`."""

    now: datetime

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def at(self, **delta: float) -> "Clock":
        """Another clock, this far from this one."""
        return Clock(self.now + timedelta(**delta))


def make_model(name: str, team_slug: str = "data-science") -> RegisteredModel:
    return registry.model_register(actor=None, name=name, owner_team=team_slug)[0]


def make_build(model: RegisteredModel, version: str, *, artifact_sha256: str = "") -> ModelVersion:
    return registry.model_version_register(
        actor=None,
        model=model.name,
        version=version,
        repository=REPOSITORY,
        commit_sha=hashlib.sha1(f"{model.name}{version}".encode()).hexdigest(),  # noqa: S324
        build_id=f"build-{model.name}-{version}",
        artifact_uri=f"s3://models/{model.name}/{version}.tar.gz",
        artifact_sha256=artifact_sha256 or digest(f"{model.name}:{version}"),
    )[0]


def sign(signer, change_request: ChangeRequest, decision: str = "approve") -> None:
    change_request.refresh_from_db()
    change_requests.change_request_sign(
        actor=signer,
        change_request=change_request,
        decision=decision,
        comment="" if decision == "approve" else "Not like this.",
        password=DEMO_PASSWORD,
        content_digest=change_request.content_digest,
    )


def file_change(
    *,
    model_version: ModelVersion,
    environment: Environment,
    requester,
    signers: list = (),
    window_start: datetime | None = None,
    hours: float = 48,
    kind: str = Kind.NORMAL,
) -> ChangeRequest:
    """File a change request and have `signers` sign it in order (peer first, then the
    approval teams; for an emergency, the emergency approver)."""
    emergency = kind == Kind.EMERGENCY
    change = change_requests.change_request_file(
        actor=requester,
        model_version=model_version,
        environment=environment,
        kind=kind,
        title=f"Release {model_version}",
        justification="Fraud losses since the scheme change." if emergency else "Better recall.",
        rollback_plan="Roll back to the previous version.",
        window_start=None if emergency else window_start,
        window_end=None if emergency else window_start + timedelta(hours=hours),
        incident_ref="INC-4711" if emergency else "",
    )
    for signer in signers:
        sign(signer, change)
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
) -> Deployment:
    """Start a deployment now and report its result one minute later."""
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


def release_to_test(
    envs: dict[str, Environment],
    version: ModelVersion,
    ci,
    clock: Clock,
    requester,
    peer,
    succeed: bool = True,
    *,
    pause: timedelta = timedelta(hours=1),
) -> Deployment:
    """File a change for `version` in test, have the peer approve it, deploy it through the
    pipeline, then let `pause` pass."""
    change = file_change(
        model_version=version,
        environment=envs["test"],
        requester=requester,
        signers=[peer],
        window_start=clock.now,
    )
    deployment = deploy(
        actor=ci.account,
        environment=envs["test"],
        model_version=version,
        change_request=change,
        clock=clock,
        succeed=succeed,
    )
    clock.advance(seconds=pause.total_seconds())
    return deployment
