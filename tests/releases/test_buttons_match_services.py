"""A page never offers what the service refuses, and offers what it accepts: for each action with
a button, for several personas, the button is shown exactly when the service call succeeds (the
call is undone afterwards, so every persona meets the same state)."""

from collections.abc import Callable

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from portal.exceptions import DomainError
from releases.builders import release_to_test, sign
from releases.services import change_requests as services
from releases.services import policy
from releases.services.deployments import (
    deployment_rollback,
    health_check_record,
    unauthorised_change_review,
)

pytestmark = pytest.mark.django_db

PERSONAS = ("requester", "peer", "risk", "release", "changemgr", "auditor", "admin")


class _Undo(Exception):
    pass


def accepted(call: Callable[[], object]) -> bool:
    """Whether the service accepts the call; what it wrote is rolled back."""
    try:
        with transaction.atomic():
            call()
            raise _Undo
    except _Undo:
        return True
    except (DomainError, ValidationError):
        return False


def compare(client, password, url: str, button: str, call: Callable) -> dict[str, tuple]:
    """persona → (button shown, service accepted), for every persona."""
    seen = {}
    for username in PERSONAS:
        persona = get_user_model().objects.get(username=username)
        client.force_login(persona)
        page = client.get(url)
        assert page.status_code == 200
        seen[username] = (button in page.content.decode(), accepted(lambda p=persona: call(p)))
    return seen


def assert_matches(seen: dict[str, tuple]) -> None:
    assert {name: shown for name, (shown, _) in seen.items()} == {
        name: ok for name, (_, ok) in seen.items()
    }
    outcomes = {ok for _, ok in seen.values()}
    assert outcomes == {True, False}, "every persona got the same answer: the test proves nothing"


@pytest.fixture
def in_review(new_change):
    return new_change()


@pytest.fixture
def in_approval(new_change, peer):
    change_request = new_change()
    sign(peer, change_request)
    change_request.refresh_from_db()
    return change_request


def page_of(change_request) -> str:
    return f"/releases/change-requests/{change_request.number}/"


@pytest.mark.parametrize("state", ["in_review", "in_approval"])
def test_sign(request, state, client, password, org):
    change_request = request.getfixturevalue(state)
    assert_matches(
        compare(
            client,
            password,
            page_of(change_request),
            f'href="{page_of(change_request)}sign/',
            lambda persona: sign(persona, change_request),
        )
    )


@pytest.mark.parametrize("state", ["in_approval", "approved"])
def test_cancel(request, state, client, password):
    change_request = request.getfixturevalue(state)
    seen = compare(
        client,
        password,
        page_of(change_request),
        f'action="{page_of(change_request)}cancel/"',
        lambda persona: services.change_request_cancel(
            actor=persona, change_request=change_request, reason="No longer wanted."
        ),
    )
    assert_matches(seen)
    # The requester and the change manager, nobody else.
    assert {name for name, (shown, _) in seen.items() if shown} == {"requester", "changemgr"}


@pytest.mark.parametrize("state", ["in_approval", "approved"])
def test_withdraw_a_sign_off(request, state, client, password):
    change_request = request.getfixturevalue(state)
    for sign_off in change_request.sign_offs.filter(signer__username__in=PERSONAS):
        seen = compare(
            client,
            password,
            page_of(change_request),
            f'action="{page_of(change_request)}sign-offs/{sign_off.pk}/withdraw/"',
            lambda persona, s=sign_off: services.sign_off_withdraw(
                actor=persona, sign_off=s, reason="I must look again."
            ),
        )
        assert_matches(seen)
        assert {name for name, (shown, _) in seen.items() if shown} == {sign_off.signer.username}


@pytest.mark.parametrize("state", ["in_approval", "approved"])
def test_edit(request, state, client, password):
    change_request = request.getfixturevalue(state)
    assert_matches(
        compare(
            client,
            password,
            page_of(change_request),
            f'href="{page_of(change_request)}edit/"',
            lambda persona: services.change_request_edit(
                actor=persona, change_request=change_request, title="Retitled"
            ),
        )
    )


@pytest.fixture
def released_twice(envs, builds, ci, clock, requester, peer, org):
    """Two releases of fraud-score in test, whose policy then names Model Risk as its approval
    team (so its approvers may roll back and review flags there)."""
    release_to_test(envs, builds["1.0"], ci.account, clock, requester, peer)
    live = release_to_test(envs, builds["1.1"], ci.account, clock, requester, peer)
    policy.environment_policy_change(
        actor=None, environment=envs["test"], approval_teams=[org["model-risk"]]
    )
    return live


def test_roll_back(released_twice, envs, fraud, client, password):
    assert_matches(
        compare(
            client,
            password,
            "/releases/environments/test/",
            "Roll back</button>",
            lambda persona: deployment_rollback(
                actor=persona, environment=envs["test"], model=fraud, reason="Scores drift."
            ),
        )
    )


def test_review_an_unauthorised_change(released_twice, client, password):
    health_check_record(deployment=released_twice, ok=True, reported_sha256="f" * 64)
    flag = released_twice.unauthorised_changes.get()
    assert_matches(
        compare(
            client,
            password,
            "/releases/environments/test/",
            f"/releases/unauthorised-changes/{flag.pk}/review/",
            lambda persona: unauthorised_change_review(
                actor=persona, flag=flag, note="A rebuild of the same commit."
            ),
        )
    )
