"""Rule 7 as time live in test, not time since a success (issue 14, hole 1): a build that was live
in test for three minutes, or that was rolled back there, has not soaked, whenever asked; a
failed health check during the span is evidence, and refuses where the policy says so."""

import re
from datetime import timedelta

import pytest

from releases.builders import file_change, release_to_test
from releases.selectors.policy import environment_policy_current
from releases.services import policy
from releases.services.deployments import deployment_rollback, health_check_record

pytestmark = pytest.mark.django_db


def prod_change_now(envs, build, requester, prod_signers, clock):
    return file_change(
        model_version=build,
        environment=envs["prod"],
        requester=requester,
        signers=prod_signers,
        window_start=clock.now,
    )


def ask_gate(ci, build) -> dict:
    question = {"environment": "prod", "model": build.model.name, "version": build.version}
    return ci.client().post("/api/v1/gate/", question, format="json").json()


def change_page(login, user, change) -> str:
    page = login(user).get(f"/releases/change-requests/{change.number}/").content.decode()
    return re.sub(r"\s+", " ", page).replace("&#x27;", "'")


def test_three_minutes_in_test_is_not_a_week_of_soak(
    envs, builds, ci, clock, requester, peer, prod_signers, login, release_approver, django_clock
):
    release_to_test(
        envs, builds["1.0"], ci.account, clock, requester, peer, pause=timedelta(minutes=3)
    )
    release_to_test(envs, builds["1.1"], ci.account, clock, requester, peer)
    clock.advance(days=8)
    change = prod_change_now(envs, builds["1.0"], requester, prod_signers, clock)

    answer = ask_gate(ci, builds["1.0"])
    assert [reason["code"] for reason in answer["reasons"]] == ["soak_not_met"]
    soak = answer["soak"]
    assert soak["live_until"] is not None and soak["earliest_allowed_at"] is None
    assert soak["holds"] is False and soak["rolled_back_at"] is None
    assert "less than 7 days" in answer["reasons"][0]["message"]
    page = change_page(login, release_approver, change)
    assert "not while it is not live in test" in page
    assert "<code>soak_not_met</code>" in page

    # The build that stayed live is the one that soaks.
    later = prod_change_now(envs, builds["1.1"], requester, prod_signers, clock)
    assert ask_gate(ci, builds["1.1"])["allowed"] is True
    assert later.number in change_page(login, release_approver, later)


def test_a_rollback_in_test_voids_the_soak_even_with_an_older_success(
    envs, builds, ci, clock, requester, peer, prod_signers, login, release_approver, django_clock
):
    """Day 0: 1.0 live in test; day 3: 1.1; day 5: 1.0 again; day 6: rolled back to 1.1. On
    day 8 the day-0 success does not count: the latest span of 1.0 was rolled back."""
    release_to_test(
        envs, builds["1.0"], ci.account, clock, requester, peer, pause=timedelta(days=3)
    )
    release_to_test(
        envs, builds["1.1"], ci.account, clock, requester, peer, pause=timedelta(days=2)
    )
    release_to_test(
        envs, builds["1.0"], ci.account, clock, requester, peer, pause=timedelta(days=1)
    )
    deployment_rollback(
        actor=ci.account,
        environment=envs["test"],
        model=builds["1.0"].model,
        reason="Drift.",
        now=clock.now,
    )
    clock.advance(days=2)
    change = prod_change_now(envs, builds["1.0"], requester, prod_signers, clock)

    answer = ask_gate(ci, builds["1.0"])
    assert [reason["code"] for reason in answer["reasons"]] == ["soak_not_met"]
    assert answer["soak"]["rolled_back_at"] is not None
    assert answer["soak"]["earliest_allowed_at"] is None
    page = change_page(login, release_approver, change)
    assert "rolled back away from" in page


def test_failed_health_checks_are_evidence_and_refuse_where_the_policy_asks(
    envs, builds, ci, clock, requester, peer, prod_signers, django_clock
):
    in_test = release_to_test(envs, builds["1.0"], ci.account, clock, requester, peer)
    health_check_record(deployment=in_test, ok=False, detail="HTTP 503", now=clock.now)
    clock.advance(days=8)
    prod_change_now(envs, builds["1.0"], requester, prod_signers, clock)

    tolerant = ask_gate(ci, builds["1.0"])
    assert tolerant["allowed"] is True
    assert tolerant["soak"]["failed_health_checks"] == 1

    current = environment_policy_current(environment=envs["prod"])
    policy.environment_policy_change(
        actor=None,
        environment=envs["prod"],
        approval_teams=current.approval_teams.all(),
        soak_source=envs["test"],
        soak_days=7,
        soak_requires_healthy=True,
    )
    strict = ask_gate(ci, builds["1.0"])
    assert [reason["code"] for reason in strict["reasons"]] == ["soak_not_met"]
    assert "health check" in strict["reasons"][0]["message"]
    assert strict["policy_version"] == current.version + 1
