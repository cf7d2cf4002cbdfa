"""Changing your mind (issue 14, hole 7): a signer withdraws their own sign-off before the change
is deployed, with a reason, and the change goes back to the step it now waits for; the requester
or a change manager cancels an approved change, with a reason. Both are kept and audited, and
the people concerned are told."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from organisation import services as org_services
from portal.exceptions import Conflict, RuleDenied
from portal.models import Notification
from releases.builders import deploy, file_change, sign
from releases.models import SignOff
from releases.services import change_requests as services
from releases.services.deployments import deployment_start
from releases.services.gate import gate_evaluate
from releases.states import State

pytestmark = pytest.mark.django_db

REASON = "The backtest used the wrong month; I must look again."


def denied(call, code, kind=RuleDenied):
    with pytest.raises(kind) as error:
        call()
    assert error.value.code == code
    return error.value


def withdraw(actor, sign_off, reason=REASON):
    return services.sign_off_withdraw(actor=actor, sign_off=sign_off, reason=reason)


def cancel(actor, change_request, reason="The release is no longer wanted."):
    return services.change_request_cancel(actor=actor, change_request=change_request, reason=reason)


def events_of(change_request, action):
    return list(
        AuditEvent.objects.filter(
            object_type="releases.changerequest", object_id=str(change_request.pk), action=action
        ).order_by("seq")
    )


def sign_off_of(change_request, signer) -> SignOff:
    return change_request.sign_offs.get(signer=signer, voided_at__isnull=True)


def test_a_withdrawn_team_approval_sends_the_approved_change_back_to_approval(
    approved, model_risk_approver, org
):
    approval = sign_off_of(approved, model_risk_approver)
    withdrawn = withdraw(model_risk_approver, approval)
    approved.refresh_from_db()
    assert approved.state == State.IN_APPROVAL
    # Kept, not deleted: void, with who withdrew it and why.
    assert withdrawn.pk == approval.pk
    assert withdrawn.voided_at is not None
    assert withdrawn.withdrawn_by == model_risk_approver
    assert withdrawn.voided_reason == REASON
    event = events_of(approved, "sign_off.withdrawn")[-1]
    assert event.actor_name == model_risk_approver.username
    assert event.data["sign_off"] == approval.pk
    assert event.data["team"] == "model-risk"
    assert event.data["reason"] == REASON
    assert (event.data["state_before"], event.data["state_after"]) == ("approved", "in_approval")
    # The slot is open again: the signer may sign again once they have looked.
    sign(model_risk_approver, approved)
    approved.refresh_from_db()
    assert approved.state == State.APPROVED


def test_a_withdrawn_peer_review_sends_the_change_back_to_peer_review(new_change, peer):
    change_request = new_change()
    review = sign(peer, change_request)
    withdraw(peer, review)
    change_request.refresh_from_db()
    assert change_request.state == State.IN_REVIEW
    sign(peer, change_request)
    change_request.refresh_from_db()
    assert change_request.state == State.IN_APPROVAL


def test_a_new_peer_review_of_a_change_the_teams_approved_approves_it_again(
    approved, peer, org, requester
):
    withdraw(peer, sign_off_of(approved, peer))
    approved.refresh_from_db()
    assert approved.state == State.IN_REVIEW
    other_peer = get_user_model().objects.create_user("peer2", password="gatehouse-demo")
    org_services.membership_set(actor=None, user=other_peer, team=org["data-science"])
    sign(other_peer, approved)
    approved.refresh_from_db()
    # Every team's approval still stands: nothing is left to wait for in approval.
    assert approved.state == State.APPROVED


def test_only_the_signer_withdraws_their_sign_off(
    approved, model_risk_approver, release_approver, requester, change_manager, ci
):
    approval = sign_off_of(approved, model_risk_approver)
    for someone_else in (release_approver, requester, change_manager):
        denied(lambda who=someone_else: withdraw(who, approval), "not_the_signer")
    denied(lambda: withdraw(ci.account, approval), "people_only")
    approval.refresh_from_db()
    assert approval.voided_at is None


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_withdrawal_needs_a_reason(approved, model_risk_approver, reason):
    approval = sign_off_of(approved, model_risk_approver)
    with pytest.raises(ValidationError) as error:
        withdraw(model_risk_approver, approval, reason=reason)
    assert error.value.error_dict["reason"][0].code == "reason_required"
    approved.refresh_from_db()
    assert approved.state == State.APPROVED


def test_a_withdrawal_once_deployed_is_refused(approved_for_test, builds, envs, peer, ci, clock):
    change_request = approved_for_test("1.0")
    review = sign_off_of(change_request, peer)
    deploy(
        actor=ci.account,
        environment=envs["test"],
        model_version=builds["1.0"],
        change_request=change_request,
        clock=clock,
    )
    error = denied(lambda: withdraw(peer, review), "already_deployed", Conflict)
    assert change_request.number in error.detail
    review.refresh_from_db()
    assert review.voided_at is None


def test_a_withdrawal_while_a_deployment_runs_is_refused(
    approved_for_test, builds, envs, peer, ci, clock
):
    change_request = approved_for_test("1.0")
    deployment_start(
        actor=ci.account,
        environment=envs["test"],
        model_version=builds["1.0"],
        change_request=change_request,
        now=clock.now,
    )
    denied(
        lambda: withdraw(peer, sign_off_of(change_request, peer)),
        "deployment_in_progress",
        Conflict,
    )
    denied(
        lambda: cancel(change_request.requester, change_request), "deployment_in_progress", Conflict
    )


def test_a_withdrawal_on_a_closed_change_is_refused(approved, model_risk_approver, requester):
    cancel(requester, approved)
    denied(
        lambda: withdraw(model_risk_approver, sign_off_of(approved, model_risk_approver)),
        "change_closed",
        Conflict,
    )


def test_a_withdrawn_or_voided_sign_off_is_not_withdrawn_again(approved, model_risk_approver):
    approval = sign_off_of(approved, model_risk_approver)
    withdraw(model_risk_approver, approval)
    denied(lambda: withdraw(model_risk_approver, approval), "sign_off_void", Conflict)


def test_an_emergency_authorisation_is_not_withdrawn(envs, builds, requester, change_manager):
    emergency = file_change(
        requester=requester,
        model_version=builds["1.0"],
        environment=envs["prod"],
        signers=[change_manager],
        kind="emergency",
    )
    denied(
        lambda: withdraw(change_manager, sign_off_of(emergency, change_manager)),
        "not_withdrawable",
    )


def test_the_gate_refuses_a_change_whose_sign_off_was_withdrawn(
    approved_for_test, envs, peer, clock
):
    change_request = approved_for_test("1.0")
    clock.advance(minutes=5)

    def ask():
        return gate_evaluate(
            environment=envs["test"],
            model=change_request.model_version.model,
            version=change_request.model_version.version,
            change_request=change_request.number,
            now=clock.now,
        )

    assert ask().allowed
    withdraw(peer, sign_off_of(change_request, peer))
    answer = ask()
    assert not answer.allowed
    assert "no_approved_change" in [reason.code for reason in answer.reasons]


def test_a_withdrawal_tells_the_requester_the_other_signers_and_the_team_now_missing(
    approved, org, model_risk_approver, requester, peer, release_approver, platform_approver
):
    second_risk = get_user_model().objects.create_user("risk2", password="gatehouse-demo")
    org_services.membership_set(
        actor=None, user=second_risk, team=org["model-risk"], is_approver=True
    )
    approval = sign_off_of(approved, model_risk_approver)
    withdraw(model_risk_approver, approval)
    told = Notification.objects.filter(key=f"signoff:{approval.pk}:withdrawn")
    assert {n.recipient.username for n in told} == {
        requester.username,
        peer.username,
        release_approver.username,
        platform_approver.username,
        "risk2",
    }
    assert all(REASON in n.body for n in told)


def test_the_requester_cancels_an_approved_change_with_a_reason(approved, requester, peer):
    cancelled = cancel(requester, approved, reason="The vendor pulled the feature.")
    assert cancelled.state == State.CANCELLED
    event = events_of(approved, "change_request.cancelled")[-1]
    assert event.data["reason"] == "The vendor pulled the feature."
    assert (event.data["state_before"], event.data["state_after"]) == ("approved", "cancelled")
    told = Notification.objects.filter(key=f"cr:{approved.pk}:cancelled")
    assert peer in [n.recipient for n in told]
    assert requester not in [n.recipient for n in told]


def test_a_change_manager_cancels_an_approved_change(
    approved, change_manager, requester, prod_signers
):
    cancelled = cancel(change_manager, approved)
    assert cancelled.state == State.CANCELLED
    assert events_of(approved, "change_request.cancelled")[-1].actor_name == "changemgr"
    told = {n.recipient for n in Notification.objects.filter(key=f"cr:{approved.pk}:cancelled")}
    assert told == {requester, *prod_signers}


def test_a_bystander_does_not_cancel(approved, auditor, model_risk_approver, peer):
    for bystander in (auditor, model_risk_approver, peer):
        denied(lambda who=bystander: cancel(who, approved), "not_allowed_to_cancel")
    approved.refresh_from_db()
    assert approved.state == State.APPROVED


@pytest.mark.parametrize("reason", ["", "  "])
def test_a_cancellation_needs_a_reason(approved, requester, reason):
    with pytest.raises(ValidationError) as error:
        cancel(requester, approved, reason=reason)
    assert error.value.error_dict["reason"][0].code == "reason_required"


def test_a_deployed_change_is_not_cancelled(approved_for_test, builds, envs, ci, clock, requester):
    change_request = approved_for_test("1.0")
    deploy(
        actor=ci.account,
        environment=envs["test"],
        model_version=builds["1.0"],
        change_request=change_request,
        clock=clock,
        took=timedelta(minutes=1),
    )
    denied(lambda: cancel(requester, change_request), "invalid_transition", Conflict)


def test_the_api_shows_who_withdrew_a_sign_off(approved, model_risk_approver, auditor, client):
    approval = sign_off_of(approved, model_risk_approver)
    withdraw(model_risk_approver, approval)
    client.force_login(auditor)
    body = client.get(f"/api/v1/change-requests/{approved.number}/").json()
    by_id = {s["id"]: s for s in body["sign_offs"]}
    assert by_id[approval.pk]["withdrawn_by"] == "risk"
    assert by_id[approval.pk]["voided_reason"] == REASON
    assert {s["withdrawn_by"] for i, s in by_id.items() if i != approval.pk} == {None}
