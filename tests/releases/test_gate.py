"""One test per gate code, each with the case the rule allows next to the case it denies."""

from datetime import timedelta

import pytest

from audit.models import AuditEvent
from registry.builders import build_register
from releases.builders import deploy, file_change, release_to_test
from releases.models import Environment, GateDecision, GatePurpose
from releases.services import change_requests, policy
from releases.services.deployments import (
    deployment_record_result,
    deployment_rollback,
    deployment_start,
)
from releases.services.gate import gate_decide, gate_evaluate
from releases.states import Kind, State

pytestmark = pytest.mark.django_db


@pytest.fixture
def soaked(envs, builds, ci, clock, requester, peer):
    """Build 1.0 ran in test (under its own change) and has soaked there for eight days."""
    release_to_test(
        envs, builds["1.0"], ci.account, clock, requester, peer, pause=timedelta(days=8)
    )
    return builds["1.0"]


@pytest.fixture
def prod_change(soaked, envs, requester, prod_signers, clock):
    """An approved prod change for the soaked build whose window is open now."""
    change = file_change(
        model_version=soaked,
        environment=envs["prod"],
        requester=requester,
        signers=prod_signers,
        window_start=clock.now,
    )
    clock.advance(minutes=10)
    return change


def ask(envs, model_version, clock, environment="prod", **extra):
    return gate_evaluate(
        environment=envs[environment],
        model=model_version.model,
        version=model_version.version,
        now=clock.now,
        **extra,
    )


def emergency(envs, version, requester, signers=()):
    return file_change(
        model_version=version,
        environment=envs["prod"],
        requester=requester,
        signers=list(signers),
        kind=Kind.EMERGENCY,
    )


def freeze(envs, clock, name="prod", **length):
    return policy.freeze_window_create(
        actor=None,
        environment=envs[name],
        starts_at=clock.now - timedelta(hours=1),
        ends_at=clock.now + timedelta(**(length or {"hours": 1})),
        reason="Year-end close",
    )


def test_allowed_with_an_approved_soaked_change(envs, prod_change, clock):
    assert prod_change.state == State.APPROVED
    answer = ask(envs, prod_change.model_version, clock)
    assert answer.allowed, answer.reasons
    assert answer.change_request == prod_change
    assert answer.policy.version == 1
    assert answer.soak.holds


def test_dev_allows_without_a_change_request(envs, builds, clock):
    answer = ask(envs, builds["1.0"], clock, environment="dev")
    assert answer.allowed and answer.change_request is None


def test_no_approved_change(envs, soaked, clock, requester, peer):
    assert ask(envs, soaked, clock).codes() == ["no_approved_change"]
    in_approval = file_change(
        model_version=soaked,
        environment=envs["prod"],
        requester=requester,
        signers=[peer],
        window_start=clock.now,
    )
    assert in_approval.state == State.IN_APPROVAL
    answer = ask(envs, soaked, clock)
    assert answer.change_request == in_approval
    assert answer.codes() == ["no_approved_change"]
    assert "in approval" in answer.reasons[0].message


def test_outside_window(envs, prod_change, clock):
    assert ask(envs, prod_change.model_version, clock).allowed
    early = clock.at(hours=-1)
    assert ask(envs, prod_change.model_version, early).codes() == ["outside_window"]
    late = ask(envs, prod_change.model_version, clock.at(hours=48))
    assert late.codes() == ["outside_window"]
    assert "valid from" in late.reasons[0].message


def test_freeze_in_effect(envs, prod_change, clock):
    frozen = freeze(envs, clock)
    answer = ask(envs, prod_change.model_version, clock)
    assert answer.codes() == ["freeze_in_effect"]
    assert "Year-end close" in answer.reasons[0].message
    assert ask(envs, prod_change.model_version, clock.at(hours=1)).allowed
    policy.freeze_window_cancel(actor=None, freeze_window=frozen, reason="Close done early.")
    assert ask(envs, prod_change.model_version, clock).allowed


def test_a_freeze_of_another_environment_does_not_matter(envs, prod_change, clock):
    freeze(envs, clock, name="dev")
    assert ask(envs, prod_change.model_version, clock).allowed
    assert ask(envs, prod_change.model_version, clock, environment="dev").codes() == [
        "freeze_in_effect"
    ]


def test_soak_not_met_gives_the_earliest_date(
    envs, builds, ci, clock, requester, prod_signers, approved_for_test
):
    in_test = approved_for_test("1.1")
    file_change(
        model_version=builds["1.1"],
        environment=envs["prod"],
        requester=requester,
        signers=prod_signers,
        window_start=clock.now,
        hours=24 * 30,
    )
    never = ask(envs, builds["1.1"], clock)
    assert never.codes() == ["soak_not_met"]
    assert never.soak.deployment_id is None and never.soak.earliest_allowed_at is None

    ran = deploy(
        actor=ci.account,
        environment=envs["test"],
        model_version=builds["1.1"],
        change_request=in_test,
        clock=clock,
    )
    earliest = ran.succeeded_at + timedelta(days=7)
    clock.advance(days=6)
    waiting = ask(envs, builds["1.1"], clock)
    assert waiting.codes() == ["soak_not_met"]
    assert waiting.soak.deployment_id == ran.pk
    assert waiting.soak.earliest_allowed_at == earliest
    assert earliest.strftime("%Y-%m-%d %H:%M") in waiting.reasons[0].message
    clock.now = earliest
    assert ask(envs, builds["1.1"], clock).allowed


def test_soak_does_not_count_a_deployment_rolled_back_in_test(
    envs, builds, ci, clock, requester, prod_signers, approved_for_test
):
    for version in ("1.1", "1.2"):
        change = approved_for_test(version)
        deploy(
            actor=ci.account,
            environment=envs["test"],
            model_version=builds[version],
            change_request=change,
            clock=clock,
        )
    file_change(
        model_version=builds["1.2"],
        environment=envs["prod"],
        requester=requester,
        signers=prod_signers,
        window_start=clock.now + timedelta(days=8),
    )
    clock.advance(days=8, minutes=1)
    assert ask(envs, builds["1.2"], clock).allowed
    deployment_rollback(
        actor=ci.account, environment=envs["test"], model=builds["1.2"].model, reason="Drift."
    )
    answer = ask(envs, builds["1.2"], clock)
    assert answer.codes() == ["soak_not_met"]
    assert answer.soak.rolled_back_at is not None and answer.soak.earliest_allowed_at is None


def test_soak_needs_the_same_model(envs, prod_change, clock, org):
    other = build_register("other-model", "1.0")
    assert ask(envs, prod_change.model_version, clock).soak.deployment_id is not None
    assert ask(envs, other, clock).soak.deployment_id is None


def test_digest_mismatch(envs, prod_change, builds, clock):
    version = prod_change.model_version
    assert ask(envs, version, clock, artifact_sha256=version.artifact_sha256).allowed
    wrong = ask(envs, version, clock, artifact_sha256=builds["1.1"].artifact_sha256)
    assert wrong.codes() == ["digest_mismatch"]
    # A change names one build: another digest cannot go under it.
    other = ask(envs, builds["1.1"], clock, change_request=prod_change.number)
    assert "digest_mismatch" in other.codes()


def test_asking_by_digest_alone_finds_the_version(envs, prod_change, clock):
    answer = gate_evaluate(
        environment="prod",
        model=prod_change.model_version.model.name,
        artifact_sha256=prod_change.model_version.artifact_sha256,
        now=clock.now,
    )
    assert answer.allowed and answer.model_version == prod_change.model_version


def test_change_already_used_but_a_failure_may_be_retried(envs, prod_change, ci, clock):
    version = prod_change.model_version
    deploy(
        actor=ci.account,
        environment=envs["prod"],
        model_version=version,
        change_request=prod_change,
        clock=clock,
        succeed=False,
    )
    assert ask(envs, version, clock, change_request=prod_change).allowed
    deploy(
        actor=ci.account,
        environment=envs["prod"],
        model_version=version,
        change_request=prod_change,
        clock=clock,
    )
    prod_change.refresh_from_db()
    assert prod_change.state == State.DEPLOYED
    assert ask(envs, version, clock, change_request=prod_change).codes() == ["change_already_used"]


def test_deployment_in_progress(envs, prod_change, ci, clock):
    version = prod_change.model_version
    started, _ = deployment_start(
        actor=ci.account,
        environment=envs["prod"],
        model_version=version,
        change_request=prod_change,
        now=clock.now,
    )
    assert ask(envs, version, clock).codes() == ["deployment_in_progress"]
    deployment_record_result(actor=ci.account, deployment=started, status="failed")
    assert ask(envs, version, clock).allowed


def test_emergency_not_authorised(envs, builds, clock, requester):
    waiting = emergency(envs, builds["1.2"], requester)
    assert waiting.state == State.AWAITING_AUTHORISATION
    answer = ask(envs, builds["1.2"], clock)
    assert answer.change_request == waiting
    assert answer.codes() == ["emergency_not_authorised"]


def test_an_authorised_emergency_skips_soak_and_freeze(
    envs, builds, clock, requester, change_manager
):
    change = emergency(envs, builds["1.2"], requester, [change_manager])
    assert change.state == State.AUTHORISED
    freeze(envs, clock, days=1)
    answer = ask(envs, builds["1.2"], clock)
    assert answer.allowed, answer.reasons
    assert answer.change_request == change and answer.soak is None


def test_emergency_expired(envs, builds, clock, requester, change_manager):
    emergency(envs, builds["1.2"], requester, [change_manager])
    assert ask(envs, builds["1.2"], clock.at(hours=23)).allowed
    assert ask(envs, builds["1.2"], clock.at(hours=25)).codes() == ["emergency_expired"]


def test_policy_emergency_not_allowed(envs, builds, clock, requester, change_manager, org):
    emergency(envs, builds["1.2"], requester, [change_manager])
    policy.environment_policy_change(
        actor=None,
        environment=envs["prod"],
        approval_teams=[org["model-risk"]],
        emergency_allowed=False,
    )
    answer = ask(envs, builds["1.2"], clock)
    assert answer.codes() == ["policy_emergency_not_allowed"]
    assert answer.policy.version == 2


def test_retrospective_overdue_blocks_the_next_emergency_and_flags_the_rest(
    envs, builds, ci, clock, requester, change_manager
):
    first = emergency(envs, builds["1.1"], requester, [change_manager])
    deploy(
        actor=ci.account,
        environment=envs["prod"],
        model_version=builds["1.1"],
        change_request=first,
        clock=clock,
    )
    first.refresh_from_db()
    assert first.state == State.RETRO_REVIEW
    assert first.retrospective_due_at == clock.now + timedelta(hours=72)

    # The next emergency was filed and authorised in time; the gate judges it when it deploys.
    emergency(envs, builds["1.2"], requester, [change_manager])
    assert ask(envs, builds["1.2"], clock.at(hours=23)).allowed
    late = clock.at(hours=73)
    blocked = ask(envs, builds["1.2"], late)
    assert "retrospective_overdue" in blocked.codes()
    assert first.number in blocked.reasons[-1].message
    # Other deployments of the model are not blocked, but the answer carries the flag.
    normal = ask(envs, builds["1.0"], late, environment="dev")
    assert normal.allowed
    assert [warning.code for warning in normal.warnings] == ["retrospective_overdue"]
    assert ask(envs, builds["1.0"], clock.at(hours=71), environment="dev").warnings == []


def test_unknown_names(envs, builds):
    def codes(**question):
        return gate_evaluate(**{"environment": "dev", "model": "fraud-score", **question}).codes()

    assert codes(version="1.0") == []
    assert codes(environment="staging", version="1.0") == ["unknown_environment"]
    assert codes(model="nope", version="1.0") == ["unknown_model"]
    assert codes(version="9.9") == ["unknown_version"]
    assert codes(artifact_sha256="0" * 64) == ["unknown_version"]
    assert codes(version="1.0", change_request="CR-999999") == ["unknown_change_request"]


def test_wrong_environment_model_and_version(envs, prod_change, clock):
    version = prod_change.model_version
    number = prod_change.number
    assert ask(envs, version, clock, change_request=number).allowed
    in_test = ask(envs, version, clock, environment="test", change_request=number)
    assert "wrong_environment" in in_test.codes()
    other = build_register("other-model", "1.0")
    assert "wrong_model" in ask(envs, other, clock, change_request=number).codes()
    twin = build_register(  # the same build (one digest, one build) under another name
        version.model.name,
        "1.0-rebuild",
        artifact_sha256=version.artifact_sha256,
        commit_sha=version.commit_sha,
        build_id=version.build_id,
    )
    assert ask(envs, twin, clock, change_request=number).codes() == ["wrong_version"]


def test_policy_missing(envs, builds):
    policy.environment_create(actor=None, name="staging", rank=5)
    assert Environment.objects.filter(name="staging").exists()
    answer = gate_evaluate(environment="staging", model="fraud-score", version="1.0")
    assert answer.codes() == ["policy_missing"]


def test_every_failing_rule_is_listed(envs, builds, clock):
    freeze(envs, clock)
    answer = ask(envs, builds["1.0"], clock)
    assert answer.codes() == ["no_approved_change", "freeze_in_effect", "soak_not_met"]
    assert all(reason.message for reason in answer.reasons)


def test_gate_decide_records_the_decision_with_the_policy_version(envs, prod_change, ci, clock):
    before = AuditEvent.objects.count()
    answer = gate_decide(
        actor=ci.account,
        environment="prod",
        model=prod_change.model_version.model.name,
        version="1.0",
        now=clock.now,
    )
    assert answer.allowed
    decision = GateDecision.objects.get(purpose=GatePurpose.CHECK)
    assert decision.allowed and decision.policy.version == 1
    assert decision.change_request == prod_change and decision.asked_by_name == "ci-pipeline"
    event = AuditEvent.objects.filter(seq__gt=before).get()
    assert event.action == "gate.checked"
    assert event.data["change_request"] == prod_change.number


def test_a_change_approved_by_sql_is_refused_once_reconciliation_found_it(
    envs, builds, requester, clock
):
    """Rule 17: where the policy asks for no signature, a draft set to approved with plain SQL
    went through the gate on the row's word alone; once reconciliation has found that the
    trail does not explain the state, the gate refuses it with `record_inconsistent`."""
    from django.db import connection

    from releases.builders import change_fields
    from releases.services.change_requests import change_request_create
    from releases.services.reconciliation import reconcile

    policy.environment_policy_change(
        actor=None, environment=envs["test"], approval_teams=[], needs_peer_review=False
    )
    draft = change_request_create(
        actor=requester,
        **change_fields(builds["1.0"], envs["test"], window_start=clock.now, now=clock.now),
    )
    clock.advance(minutes=10)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE releases_changerequest SET state = 'approved' WHERE id = %s", [draft.pk]
        )
    assert ask(envs, builds["1.0"], clock, environment="test").allowed

    reconcile()

    answer = ask(envs, builds["1.0"], clock, environment="test")
    assert answer.codes() == ["record_inconsistent"]
    assert draft.number in answer.reasons[0].message


def test_conflicting_change_warns_of_another_change_to_the_model_in_the_same_window(
    envs, prod_change, builds, clock, requester, peer
):
    """Issue 18: two changes to one model and environment whose windows overlap are a warning,
    not a refusal; a dead change or a window elsewhere in time is no conflict."""
    assert ask(envs, prod_change.model_version, clock).warnings == []
    rival = file_change(
        model_version=builds["1.1"],
        environment=envs["prod"],
        requester=requester,
        signers=[peer],
        window_start=clock.at(hours=2).now,
    )
    answer = ask(envs, prod_change.model_version, clock)
    assert answer.allowed
    assert [warning.code for warning in answer.warnings] == ["conflicting_change"]
    assert rival.number in answer.warnings[0].message
    change_requests.change_request_cancel(actor=requester, change_request=rival, reason="Later.")
    assert ask(envs, prod_change.model_version, clock).warnings == []


def test_window_touches_freeze_warns_before_the_freeze_begins(envs, prod_change, clock):
    """A freeze planned inside the change's window warns now; it blocks only once it stands."""
    policy.freeze_window_create(
        actor=None,
        environment=envs["prod"],
        starts_at=clock.at(hours=20).now,
        ends_at=clock.at(hours=30).now,
        reason="Quarter close",
    )
    answer = ask(envs, prod_change.model_version, clock)
    assert answer.allowed
    assert [warning.code for warning in answer.warnings] == ["window_touches_freeze"]
    assert "Quarter close" in answer.warnings[0].message


def test_the_change_page_shows_the_conflict_to_both_changes(
    envs, prod_change, builds, clock, requester, peer, login, release_approver, django_clock
):
    rival = file_change(
        model_version=builds["1.1"],
        environment=envs["prod"],
        requester=requester,
        signers=[peer],
        window_start=clock.at(hours=2).now,
    )
    client = login(release_approver)
    for change, other in ((prod_change, rival), (rival, prod_change)):
        text = client.get(f"/releases/change-requests/{change.number}/").content.decode()
        assert '<span class="badge warn">conflicting_change</span>' in text
        assert f"{other.number} also changes" in text
