"""Rule 10 under a race: a rollback and a deployment of the same model in the same environment,
from two connections at once. Whatever the interleaving, the outcome is one that running them
one after the other would give: each rollback replaces the attempt recorded just before it, and
a change request is rolled back exactly when the release it authorised had gone live.

The "holds" tests keep the first transaction open for a moment after its writes, so the second
one surely arrives while the first one's locks are held (the interleaving that a plain race hits
only sometimes); the "at once" tests let both go together from a barrier."""

import itertools
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction

from audit.models import AuditEvent
from audit.verification import verify_chain
from portal.exceptions import Conflict
from releases.builders import release_to_test
from releases.models import Deployment, DeploymentKind, DeploymentStatus
from releases.selectors.live import live_deployment
from releases.services.deployments import (
    deployment_record_result,
    deployment_rollback,
    deployment_start,
)
from releases.states import State
from tests.concurrency.helpers import together
from tests.conftest import TRANSACTIONAL_APPS

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="races need PostgreSQL"),
    pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS),
]

# Long enough for the other thread to reach the lock and wait on it.
HOLD_SECONDS = 0.5


@pytest.fixture
def two_live(envs, builds, ci, clock, requester, peer, approved_for_test):
    """1.0 then 1.1 released to test; 1.2 approved there and not deployed yet."""
    first = release_to_test(
        envs, builds["1.0"], ci.account, clock, requester, peer, pause=timedelta(minutes=5)
    )
    second = release_to_test(
        envs, builds["1.1"], ci.account, clock, requester, peer, pause=timedelta(minutes=5)
    )
    third = approved_for_test("1.2")
    return first, second, third


def _race(first: Callable, second: Callable, *, hold: bool) -> tuple[dict, dict]:
    """Run both from a barrier. With `hold`, `first` runs in a transaction kept open for a
    moment after its writes, and `second` starts only once those writes are done."""
    barrier = threading.Barrier(2)
    written = threading.Event()
    outcomes: dict[str, object] = {}
    errors: dict[str, BaseException] = {}

    def run_first() -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                outcomes["first"] = first()
                written.set()
                if hold:
                    time.sleep(HOLD_SECONDS)
        except BaseException as error:
            errors["first"] = error
        finally:
            written.set()
            connections.close_all()

    def run_second() -> None:
        try:
            barrier.wait()
            if hold:
                written.wait()
                time.sleep(HOLD_SECONDS / 5)
            outcomes["second"] = second()
        except BaseException as error:
            errors["second"] = error
        finally:
            connections.close_all()

    together(run_first, run_second)
    return outcomes, errors


def _assert_plain_history(environment, model) -> None:
    """Each rollback replaced the attempt recorded just before it, and a change request is
    rolled back exactly when its deployment went live and was then rolled back."""
    history = list(Deployment.objects.filter(environment=environment, model=model).order_by("pk"))
    for before, rollback in itertools.pairwise(history):
        if rollback.kind == DeploymentKind.ROLLBACK:
            assert rollback.rollback_of_id == before.pk, (
                f"rollback {rollback.pk} replaced {rollback.rollback_of_id}, "
                f"but the attempt before it is {before.pk}"
            )
    for deployment in history:
        change = deployment.change_request
        if deployment.kind != DeploymentKind.DEPLOY or change is None:
            continue
        change.refresh_from_db()
        went_live_then_back = (
            deployment.succeeded_at is not None
            and deployment.status == DeploymentStatus.ROLLED_BACK
        )
        assert (change.state == State.ROLLED_BACK) == went_live_then_back, (
            f"{change.number} is {change.state} while its deployment {deployment.pk} is "
            f"{deployment.status} (succeeded at {deployment.succeeded_at})"
        )
    assert verify_chain().ok


def _tail() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


@pytest.mark.parametrize("hold", [True, False], ids=["holds", "at-once"])
def test_rollback_while_a_deployment_starts(envs, builds, fraud, two_live, ci, clock, hold):
    first, second, change = two_live
    start = _tail()

    outcomes, errors = _race(
        lambda: deployment_start(
            actor=ci.account,
            environment=envs["test"],
            model_version=builds["1.2"],
            change_request=change,
            now=clock.now,
        )[0],
        lambda: deployment_rollback(
            actor=ci.account,
            environment=envs["test"],
            model=fraud,
            reason="Scores drift.",
            now=clock.now,
        ),
        hold=hold,
    )

    assert errors == {}
    started, rollback = outcomes["first"], outcomes["second"]
    started.refresh_from_db()
    expected = ["deployment.rolled_back", "deployment.started"]
    if rollback.rollback_of_id == started.pk:
        # The start came first: the rollback stops it and keeps what was live.
        assert started.status == DeploymentStatus.ROLLED_BACK
        assert rollback.model_version == second.model_version
    else:
        # The rollback came first: 1.0 is back, 1.1's change is undone and 1.2 is on its way.
        assert rollback.rollback_of_id == second.pk
        assert started.status == DeploymentStatus.STARTED
        assert rollback.model_version == first.model_version
        expected.append("change_request.rolled_back")
    if hold:
        assert rollback.rollback_of_id == started.pk
    assert live_deployment(environment=envs["test"], model=fraud) == rollback
    _assert_plain_history(envs["test"], fraud)
    actions = AuditEvent.objects.filter(seq__gt=start).values_list("action", flat=True)
    assert sorted(actions) == sorted(expected)


@pytest.mark.parametrize("hold", [True, False], ids=["holds", "at-once"])
def test_rollback_while_the_deployment_reports_success(
    envs, builds, fraud, two_live, ci, clock, hold
):
    _, second, change = two_live
    started, _ = deployment_start(
        actor=ci.account,
        environment=envs["test"],
        model_version=builds["1.2"],
        change_request=change,
        now=clock.now,
    )
    clock.advance(minutes=1)
    start = _tail()

    outcomes, errors = _race(
        lambda: deployment_record_result(
            actor=ci.account, deployment=started, status="succeeded", now=clock.now
        ),
        lambda: deployment_rollback(
            actor=ci.account,
            environment=envs["test"],
            model=fraud,
            reason="Latency doubled.",
            now=clock.now,
        ),
        hold=hold,
    )

    started.refresh_from_db()
    change.refresh_from_db()
    rollback = outcomes["second"]
    assert "second" not in errors
    assert rollback.rollback_of_id == started.pk
    assert rollback.model_version == second.model_version
    assert started.status == DeploymentStatus.ROLLED_BACK
    if "first" in errors:
        # The rollback came first: the late success is refused and the change stays usable.
        assert isinstance(errors["first"], Conflict)
        assert errors["first"].code == "deployment_finished"
        assert started.succeeded_at is None
        assert change.state == State.APPROVED
    else:
        # The success came first: the release went live and its change is rolled back.
        assert started.succeeded_at is not None
        assert change.state == State.ROLLED_BACK
    if hold:
        assert errors == {}
    assert live_deployment(environment=envs["test"], model=fraud) == rollback
    _assert_plain_history(envs["test"], fraud)
    actions = sorted(AuditEvent.objects.filter(seq__gt=start).values_list("action", flat=True))
    expected = ["deployment.rolled_back"]
    if not errors:
        expected = sorted(
            [
                *expected,
                "change_request.deployed",
                "deployment.succeeded",
                "change_request.rolled_back",
            ]
        )
    assert actions == expected
