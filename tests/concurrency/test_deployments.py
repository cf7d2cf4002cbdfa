"""Rule 9 under a race: starts under one change request, from several connections at once,
give exactly one deployment. The gate runs again inside each start with the change request row
locked, so the losers see the winner's deployment."""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from releases.models import (
    Deployment,
    DeploymentKind,
    DeploymentStatus,
    GateDecision,
    GatePurpose,
)
from releases.services.deployments import GateDenied, deployment_start
from releases.services.gate import gate_evaluate
from tests.concurrency.helpers import race, together
from tests.conftest import TRANSACTIONAL_APPS

THREADS = 8

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL"
)


@pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)
def test_two_starts_under_one_change_cannot_both_win(envs, builds, ci, clock, approved_for_test):
    change = approved_for_test("1.0")

    def start() -> Deployment:
        return deployment_start(
            actor=ci.account,
            environment=envs["test"],
            model_version=builds["1.0"],
            change_request=change,
            now=clock.now,
        )[0]

    won, errors = race([start] * THREADS)
    refused = [error.answer.codes() for error in errors if isinstance(error, GateDenied)]
    assert [error for error in errors if not isinstance(error, GateDenied)] == []
    assert len(won) == 1
    assert refused == [["deployment_in_progress"]] * (THREADS - 1)
    assert Deployment.objects.filter(change_request=change).count() == 1
    decisions = GateDecision.objects.filter(purpose=GatePurpose.DEPLOYMENT, change_request=change)
    assert decisions.filter(allowed=True).count() == 1
    assert decisions.filter(allowed=False).count() == THREADS - 1


@pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)
def test_a_gate_that_waited_for_the_lock_sees_what_the_holder_recorded(
    envs, builds, clock, approved_for_test
):
    """The same race, made certain: the holder of the change's lock records an attempt and
    commits only once the second evaluation is waiting for the lock. A statement that waited
    must not answer from what it saw before it waited."""
    change = approved_for_test("1.0")
    holding = threading.Event()
    codes: list[str] = []

    def ask():
        return gate_evaluate(
            environment=envs["test"],
            model=builds["1.0"].model,
            version="1.0",
            change_request=change,
            now=clock.now,
            lock=True,
        )

    def holder() -> None:
        try:
            with transaction.atomic():
                assert ask().allowed
                Deployment.objects.create(
                    environment=envs["test"],
                    model=builds["1.0"].model,
                    model_version=builds["1.0"],
                    change_request=change,
                    kind=DeploymentKind.DEPLOY,
                    status=DeploymentStatus.STARTED,
                    started_by_name="ci-pipeline",
                    started_at=clock.now,
                )
                holding.set()
                # Long enough for the second evaluation to be waiting on the row lock.
                time.sleep(1)
        finally:
            connections.close_all()

    def waiter() -> None:
        try:
            holding.wait()
            with transaction.atomic():
                codes.extend(ask().codes())
        finally:
            connections.close_all()

    together(holder, waiter)
    assert codes == ["deployment_in_progress"]
