"""Issue 18, conflicts: each code both ways, the policy that makes collisions refusals, the batch
of questions the CAB reads agreeing with the gate, and where people are told (filing, submit,
the change page)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from organisation.services import membership_set
from registry import services as registry
from registry.builders import build_register
from registry.model_risk import model_inventory_update
from releases.builders import Clock, change_fields, file_change, sign
from releases.forms import WINDOW_FORMAT
from releases.selectors.gate import gate_questions_for_changes
from releases.services import change_requests, policy
from releases.services.gate import gate_evaluate, gate_judge
from releases.states import State

pytestmark = pytest.mark.django_db


def warnings_of(change, clock) -> list[str]:
    answer = gate_evaluate(
        environment=change.environment,
        model=change.model_version.model,
        version=change.model_version.version,
        change_request=change,
        now=clock.now,
    )
    return [warning.code for warning in answer.warnings]


def answer_of(change, clock):
    return gate_evaluate(
        environment=change.environment,
        model=change.model_version.model,
        version=change.model_version.version,
        change_request=change,
        now=clock.now,
    )


@pytest.fixture
def features(org):
    """credit-features, which fraud-score reads (an upstream model in the inventory)."""
    return registry.model_register(actor=None, name="credit-features", owner_team="data-science")[0]


@pytest.fixture
def depends(fraud, features, requester):
    model_inventory_update(actor=requester, model=fraud, upstream_models=[features.name])


def change_for(build, envs, requester, clock, *, environment="prod", start_hours=48, hours=4):
    return file_change(
        model_version=build,
        environment=envs[environment],
        requester=requester,
        window_start=clock.at(hours=start_hours).now,
        hours=hours,
        now=clock.now,
    )


def test_dependency_conflict_names_the_change_to_a_model_it_depends_on_both_ways(
    envs, builds, features, depends, requester, clock
):
    mine = change_for(builds["1.0"], envs, requester, clock)
    assert warnings_of(mine, clock) == []
    theirs = change_for(
        build_register(features.name, "4.0"), envs, requester, clock, start_hours=50
    )

    answer = answer_of(mine, clock)
    assert [w.code for w in answer.warnings] == ["dependency_conflict"]
    assert answer.warnings[0].message == (
        f"{theirs.number} changes credit-features (fraud-score depends on it) in prod in a "
        "window that overlaps this change's. Agree an order with its requester and move one "
        "of the windows."
    )
    # The other way round: the upstream model's change hears of its dependant's.
    downstream = answer_of(theirs, clock).warnings
    assert [w.code for w in downstream] == ["dependency_conflict"]
    assert downstream[0].message.startswith(
        f"{mine.number} changes fraud-score (it depends on credit-features)"
    )


def test_no_dependency_conflict_apart_in_time_place_or_relation(
    envs, builds, features, depends, requester, clock
):
    mine = change_for(builds["1.0"], envs, requester, clock)
    upstream = build_register(features.name, "4.0")
    # A window that ends when this one starts does not overlap it.
    later = change_for(upstream, envs, requester, clock, start_hours=52)
    elsewhere = change_for(upstream, envs, requester, clock, environment="test")
    assert warnings_of(mine, clock) == []
    # A model with no dependency on fraud-score, in the same window.
    stranger = registry.model_register(actor=None, name="churn", owner_team="data-science")[0]
    change_for(build_register(stranger.name, "1"), envs, requester, clock)
    assert warnings_of(mine, clock) == []
    # A dead change is no conflict.
    clash = change_for(upstream, envs, requester, clock, start_hours=49)
    assert "dependency_conflict" in warnings_of(mine, clock)
    change_requests.change_request_cancel(actor=requester, change_request=clash, reason="Later.")
    assert warnings_of(mine, clock) == []
    assert later.state == elsewhere.state == State.IN_REVIEW


@pytest.fixture
def limit(settings):
    settings.GATEHOUSE_SIGNER_CHANGES_PER_DAY = 2
    return 2


@pytest.fixture
def morning(clock) -> Clock:
    """09:00 two days from now: windows an hour or two apart on one day."""
    day = timezone.localtime(clock.now) + timedelta(days=2)
    return Clock(day.replace(hour=9, minute=0, second=0))


def prod_change(build, envs, requester, peer, clock, at: Clock, *, environment="prod"):
    """Filed and peer-reviewed: in approval, with a one-hour window from `at`."""
    return file_change(
        model_version=build,
        environment=envs[environment],
        requester=requester,
        signers=[peer] if environment == "prod" else [],
        window_start=at.now,
        hours=1,
        now=clock.now,
    )


def test_signer_overloaded_when_the_only_approver_is_needed_on_too_many_changes_that_day(
    envs, builds, requester, peer, limit, clock, morning
):
    """Each prod team has one approver (the demo's); three prod changes in approval whose
    windows start on one day need each of them three times, over the limit of two."""
    first = prod_change(builds["1.0"], envs, requester, peer, clock, morning)
    prod_change(builds["1.1"], envs, requester, peer, clock, morning.at(hours=2))
    assert warnings_of(first, clock) == []
    # A test change needs no approval team: still two prod changes.
    prod_change(
        builds["1.2"], envs, requester, peer, clock, morning.at(hours=4), environment="test"
    )
    assert warnings_of(first, clock) == []
    third = prod_change(builds["1.2"], envs, requester, peer, clock, morning.at(hours=6))
    answer = answer_of(first, clock)
    assert [w.code for w in answer.warnings] == ["signer_overloaded"]
    assert answer.warnings[0].message == (
        "risk is the only approver of Model Risk and is needed on 3 changes whose windows "
        f"start on {morning.now:%Y-%m-%d} (more than 2 a day). Spread the windows over more "
        "days, or ask an administrator to give a second person the approver role in Model Risk."
    )
    assert warnings_of(third, clock) == ["signer_overloaded"]


def test_signer_overloaded_clears_once_signed_or_shared_and_counts_one_day(
    envs, builds, requester, peer, model_risk_approver, limit, clock, morning, org
):
    changes = [
        prod_change(builds[number], envs, requester, peer, clock, morning.at(hours=2 * index))
        for index, number in enumerate(("1.0", "1.1", "1.2"))
    ]
    assert all(warnings_of(change, clock) == ["signer_overloaded"] for change in changes)
    # Rita signs one: Model Risk no longer needs her there, so two changes need her, which is
    # within the limit; Release Management's only approver is still needed on three.
    sign(model_risk_approver, changes[0])
    assert warnings_of(changes[0], clock) == ["signer_overloaded"]
    message = answer_of(changes[1], clock).warnings[0].message
    assert message.startswith("release is the only approver of Release Management")
    # A second approver in each of the other teams: nobody is the only one needed three times.
    for slug in ("release-management", "platform-operations"):
        membership_set(actor=None, user=model_risk_approver, team=org[slug], is_approver=True)
    assert [warnings_of(change, clock) for change in changes] == [[], [], []]
    # The next day is another day.
    membership_set(actor=None, user=model_risk_approver, team=org["platform-operations"])
    tomorrow = prod_change(
        build_register("fraud-score", "1.3"), envs, requester, peer, clock, morning.at(days=1)
    )
    assert warnings_of(tomorrow, clock) == []
    assert warnings_of(changes[1], clock) == ["signer_overloaded"]


def test_signer_overloaded_counts_only_the_teams_each_change_needs_by_its_risk(
    envs, requester, peer, model_risk_approver, limit, clock, morning, org
):
    """test asks Model Risk and Release Management, a low-risk change only Release Management:
    three low-risk changes on one day need Release Management's only approver three times and
    Model Risk's not at all."""
    policy.environment_policy_change(
        actor=None,
        environment=envs["test"],
        approval_teams=[org["model-risk"], org["release-management"]],
        low_risk_approval_teams=[org["release-management"]],
    )
    registry.model_register(actor=None, name="tiny", owner_team="data-science", risk_tier=3)
    changes = [
        file_change(
            model_version=build_register("tiny", f"1.{index}"),
            environment=envs["test"],
            requester=requester,
            signers=[peer],
            window_start=morning.at(hours=2 * index).now,
            hours=1,
            now=clock.now,
        )
        for index in range(3)
    ]
    assert [(c.risk_level, c.state) for c in changes] == [("low", State.IN_APPROVAL)] * 3
    answer = answer_of(changes[0], clock)
    assert [w.code for w in answer.warnings] == ["signer_overloaded"]
    assert answer.warnings[0].message.startswith(
        "release is the only approver of Release Management and is needed on 3 changes"
    )
    # A second approver in Release Management: Model Risk's only approver would now be the one
    # needed three times, were low-risk changes to need Model Risk.
    membership_set(
        actor=None, user=model_risk_approver, team=org["release-management"], is_approver=True
    )
    assert [warnings_of(change, clock) for change in changes] == [[], [], []]


def test_a_policy_that_says_so_refuses_collisions_and_still_only_warns_of_the_rest(
    envs, builds, features, depends, requester, clock, org
):
    policy.environment_policy_change(
        actor=None,
        environment=envs["test"],
        approval_teams=[],
        needs_peer_review=False,
        conflicts_block=True,
    )
    mine = change_for(builds["1.0"], envs, requester, clock, environment="test")
    rival = change_for(builds["1.1"], envs, requester, clock, environment="test", start_hours=49)
    upstream = change_for(
        build_register(features.name, "4.0"), envs, requester, clock, environment="test"
    )
    # Planned after the changes were filed (a window in a freeze is refused at filing).
    policy.freeze_window_create(
        actor=None,
        environment=envs["test"],
        starts_at=clock.at(hours=51).now,
        ends_at=clock.at(hours=60).now,
        reason="Quarter close",
    )
    assert mine.state == State.APPROVED
    answer = answer_of(mine, clock.at(hours=48, minutes=30))
    assert "conflicting_change" in answer.codes() and "dependency_conflict" in answer.codes()
    assert rival.number in answer.reasons[answer.codes().index("conflicting_change")].message
    assert upstream.number in answer.reasons[answer.codes().index("dependency_conflict")].message
    assert [w.code for w in answer.warnings] == ["window_touches_freeze"]
    # Where the policy does not say so, both are warnings again.
    policy.environment_policy_change(
        actor=None, environment=envs["test"], approval_teams=[], needs_peer_review=False
    )
    answer = answer_of(mine, clock.at(hours=48, minutes=30))
    assert answer.allowed
    assert [w.code for w in answer.warnings] == [
        "conflicting_change",
        "dependency_conflict",
        "window_touches_freeze",
    ]


def test_the_batch_the_cab_reads_gives_the_gate_answer_at_each_window_start(
    envs, builds, features, depends, requester, peer, limit, clock, morning
):
    """One statement for many changes, each judged as the gate would at its window's start."""
    changes = [
        prod_change(builds[number], envs, requester, peer, clock, morning.at(minutes=30 * index))
        for index, number in enumerate(("1.0", "1.1", "1.2"))
    ]
    changes.append(
        prod_change(build_register(features.name, "4.0"), envs, requester, peer, clock, morning)
    )
    questions = gate_questions_for_changes(changes, now=clock.now)
    assert set(questions) == {change.pk for change in changes}
    for change in changes:
        batch = gate_judge(questions[change.pk])
        alone = answer_of(change, Clock(change.window_start))
        assert batch.as_dict() == alone.as_dict()
        assert questions[change.pk].now == change.window_start
    codes = [w.code for w in gate_judge(questions[changes[0].pk]).warnings]
    assert codes == ["conflicting_change", "dependency_conflict", "signer_overloaded"]


def test_conflicts_are_shown_on_filing_on_submit_and_on_the_change_page(
    envs, builds, features, depends, requester, clock, login, django_clock
):
    theirs = change_for(build_register(features.name, "4.0"), envs, requester, clock)
    client = login(requester)
    fields = change_fields(builds["1.0"], envs["prod"], now=clock.now)
    form = {
        "model_version": fields["model_version"].pk,
        "environment": envs["prod"].pk,
        "title": fields["title"],
        "justification": fields["justification"],
        "risk_impact": fields["risk_impact"],
        "test_evidence": fields["test_evidence"],
        "rollback_plan": fields["rollback_plan"],
        "window_start": fields["window_start"].strftime(WINDOW_FORMAT),
        "window_end": fields["window_end"].strftime(WINDOW_FORMAT),
    }
    filed = client.post("/releases/change-requests/new/", {**form, "action": "draft"}, follow=True)
    text = filed.content.decode()
    assert filed.status_code == 200
    assert f"dependency_conflict: {theirs.number} changes credit-features" in text
    number = filed.redirect_chain[-1][0].rstrip("/").rsplit("/", 1)[-1]
    submitted = client.post(f"/releases/change-requests/{number}/submit/", follow=True)
    text = submitted.content.decode()
    assert "In peer review" in text
    assert text.count(f"dependency_conflict: {theirs.number} changes credit-features") == 1
    assert '<span class="badge warn">dependency_conflict</span>' in text


def test_nothing_is_said_on_filing_without_a_conflict(envs, builds, requester, login, clock):
    client = login(requester)
    fields = change_fields(builds["1.0"], envs["prod"])
    form = {
        "model_version": fields["model_version"].pk,
        "environment": envs["prod"].pk,
        "title": fields["title"],
        "justification": fields["justification"],
        "rollback_plan": fields["rollback_plan"],
        "window_start": fields["window_start"].strftime(WINDOW_FORMAT),
        "window_end": fields["window_end"].strftime(WINDOW_FORMAT),
    }
    filed = client.post("/releases/change-requests/new/", {**form, "action": "file"}, follow=True)
    assert filed.status_code == 200
    text = filed.content.decode()
    assert "filed." in text and "message warning" not in text


def test_the_policies_in_force_say_whether_collisions_refuse(envs, login, requester):
    policy.environment_policy_change(
        actor=None, environment=envs["test"], approval_teams=[], conflicts_block=True
    )
    text = login(requester).get("/releases/freezes/").content.decode()
    rows = {row.split("</td>", 1)[0]: row for row in text.split("<tr>\n        <td>")[1:]}
    assert "refuse a collision" in rows["test"]
    assert "refuse a collision" not in rows["prod"] and "<td>warn</td>" in rows["prod"]
