"""Rule 10: rollback to the version live before, with a reason, by those allowed, as a
deployment of kind rollback."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from portal.exceptions import Conflict, RuleDenied
from releases.builders import deploy, file_change, release_to_test
from releases.models import DeploymentKind, DeploymentStatus
from releases.selectors.live import live_deployment
from releases.services.deployments import deployment_rollback
from releases.states import State

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_releases(envs, builds, ci, clock, requester, peer):
    first = release_to_test(envs, builds["1.0"], ci.account, clock, requester, peer)
    second = release_to_test(envs, builds["1.1"], ci.account, clock, requester, peer)
    return first, second


def test_rolling_back_a_release_puts_the_previous_version_back(
    envs, two_releases, fraud, requester, clock
):
    first, second = two_releases
    before = AuditEvent.objects.count()
    rollback = deployment_rollback(
        actor=requester,
        environment=envs["test"],
        model=fraud,
        reason="Scores drift.",
        now=clock.now,
    )
    assert rollback.kind == DeploymentKind.ROLLBACK
    assert rollback.rollback_of == second
    assert rollback.model_version == first.model_version
    assert rollback.status == DeploymentStatus.SUCCEEDED and rollback.succeeded_at == clock.now
    assert rollback.reason == "Scores drift."
    assert rollback.change_request == first.change_request
    second.refresh_from_db()
    assert second.status == DeploymentStatus.ROLLED_BACK
    second.change_request.refresh_from_db()
    assert second.change_request.state == State.ROLLED_BACK

    assert live_deployment(environment=envs["test"], model=fraud) == rollback
    # The rolled back release still answers for the moments before its rollback.
    moment = clock.now - timedelta(seconds=1)
    assert live_deployment(environment=envs["test"], model=fraud, at=moment) == second

    actions = [e.action for e in AuditEvent.objects.filter(seq__gt=before).order_by("seq")]
    assert actions == ["change_request.rolled_back", "deployment.rolled_back"]
    event = AuditEvent.objects.get(seq__gt=before, action="deployment.rolled_back")
    assert event.data["from_version"] == "1.1" and event.data["to_version"] == "1.0"
    assert event.data["reason"] == "Scores drift."


def test_rolling_back_a_failed_attempt_keeps_its_change_usable(
    envs, builds, ci, clock, requester, peer, fraud
):
    first = release_to_test(envs, builds["1.0"], ci.account, clock, requester, peer)
    failed = release_to_test(envs, builds["1.1"], ci.account, clock, requester, peer, succeed=False)
    rollback = deployment_rollback(
        actor=ci.account, environment=envs["test"], model=fraud, reason="Half deployed."
    )
    assert rollback.rollback_of == failed
    assert rollback.model_version == first.model_version
    failed.refresh_from_db()
    assert failed.status == DeploymentStatus.ROLLED_BACK
    failed.change_request.refresh_from_db()
    assert failed.change_request.state == State.APPROVED


def test_a_second_rollback_skips_what_was_rolled_back(
    envs, builds, ci, clock, requester, peer, fraud
):
    for version in ("1.0", "1.1", "1.2"):
        release_to_test(envs, builds[version], ci.account, clock, requester, peer)
    once = deployment_rollback(
        actor=ci.account,
        environment=envs["test"],
        model=fraud,
        reason="1.2 is slow.",
        now=clock.now,
    )
    assert once.model_version.version == "1.1"
    twice = deployment_rollback(
        actor=ci.account,
        environment=envs["test"],
        model=fraud,
        reason="1.1 is wrong too.",
        now=clock.advance(hours=1),
    )
    assert twice.model_version.version == "1.0"
    assert twice.rollback_of == once
    with pytest.raises(Conflict) as error:
        deployment_rollback(actor=ci.account, environment=envs["test"], model=fraud, reason="?")
    assert error.value.code == "no_previous_version"


def test_only_to_a_version_that_was_live_before(envs, builds, ci, clock, requester, peer, fraud):
    with pytest.raises(Conflict) as error:
        deployment_rollback(actor=ci.account, environment=envs["test"], model=fraud, reason="x")
    assert error.value.code == "nothing_to_roll_back"
    release_to_test(envs, builds["1.0"], ci.account, clock, requester, peer)
    with pytest.raises(Conflict) as error:
        deployment_rollback(actor=ci.account, environment=envs["test"], model=fraud, reason="x")
    assert error.value.code == "no_previous_version"
    # Another environment's history does not count.
    deploy(actor=ci.account, environment=envs["dev"], model_version=builds["1.1"], clock=clock)
    with pytest.raises(Conflict):
        deployment_rollback(actor=ci.account, environment=envs["test"], model=fraud, reason="x")


def test_a_reason_is_required(envs, two_releases, fraud, requester):
    with pytest.raises(ValidationError) as error:
        deployment_rollback(actor=requester, environment=envs["test"], model=fraud, reason="  ")
    assert "reason" in error.value.message_dict


@pytest.fixture
def prod_history(envs, builds, ci, clock, requester, peer, prod_signers):
    """1.0 then 1.1 released to prod, each live in test for eight days first."""
    for version in ("1.0", "1.1"):
        release_to_test(
            envs, builds[version], ci.account, clock, requester, peer, pause=timedelta(days=8)
        )
        change = file_change(
            model_version=builds[version],
            environment=envs["prod"],
            requester=requester,
            signers=prod_signers,
            window_start=clock.now,
        )
        clock.advance(minutes=5)
        deploy(
            actor=ci.account,
            environment=envs["prod"],
            model_version=builds[version],
            change_request=change,
            clock=clock,
        )


@pytest.mark.parametrize(
    "who", ["requester", "model_risk_approver", "release_approver", "platform_approver"]
)
def test_the_owner_and_approvers_of_the_environment_may_roll_back(
    request, who, envs, prod_history, fraud
):
    actor = request.getfixturevalue(who)
    rollback = deployment_rollback(
        actor=actor, environment=envs["prod"], model=fraud, reason="Latency doubled."
    )
    assert rollback.started_by_user == actor
    assert rollback.model_version.version == "1.0"


def test_a_token_with_deployments_write_may_roll_back(envs, prod_history, fraud, service_caller):
    pipeline = service_caller("deployments:write")
    rollback = deployment_rollback(
        actor=pipeline.account, environment=envs["prod"], model=fraud, reason="Canary failed."
    )
    assert rollback.started_by_service == pipeline.account


@pytest.mark.parametrize("who", ["peer", "auditor", "change_manager"])
def test_others_may_not_roll_back(request, who, envs, prod_history, fraud):
    with pytest.raises(RuleDenied) as error:
        deployment_rollback(
            actor=request.getfixturevalue(who),
            environment=envs["prod"],
            model=fraud,
            reason="Because.",
        )
    assert error.value.code == "not_allowed_to_roll_back"
    assert live_deployment(environment=envs["prod"], model=fraud).model_version.version == "1.1"


def test_a_token_without_the_scope_may_not(envs, prod_history, fraud, service_caller):
    with pytest.raises(RuleDenied):
        deployment_rollback(
            actor=service_caller("gate:read").account,
            environment=envs["prod"],
            model=fraud,
            reason="Because.",
        )


def test_an_approver_of_prod_is_not_an_approver_of_test(
    envs, two_releases, fraud, model_risk_approver
):
    with pytest.raises(RuleDenied):
        deployment_rollback(
            actor=model_risk_approver, environment=envs["test"], model=fraud, reason="No."
        )
