"""Filing, editing, submitting, cancelling and expiring change requests: rules 1, 2, 5 and 8."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from portal.exceptions import Conflict, NotFound, RuleDenied
from registry.models import ModelVersion
from releases.builders import change_fields, sign
from releases.models import SignOff
from releases.services import change_requests as services
from releases.services import policy
from releases.states import State

pytestmark = pytest.mark.django_db


def events_of(change_request):
    return list(
        AuditEvent.objects.filter(
            object_type="releases.changerequest", object_id=str(change_request.pk)
        ).order_by("seq")
    )


def test_filing_names_the_exact_build_and_goes_to_peer_review(new_change, version, requester):
    change_request = new_change()
    assert change_request.state == State.IN_REVIEW
    assert change_request.model_version == version
    assert change_request.team.slug == "data-science"
    assert change_request.number == f"CR-{change_request.pk}"
    assert len(change_request.content_digest) == 64
    assert change_request.policy.version == 1
    assert [e.action for e in events_of(change_request)] == [
        "change_request.created",
        "change_request.submitted",
    ]
    created = events_of(change_request)[0]
    assert created.actor_name == "requester"
    assert created.data["content_digest"] == change_request.content_digest


def test_an_unregistered_build_is_refused(requester, envs, version):
    ghost = ModelVersion(model=version.model, version="9.9.9")
    with pytest.raises(NotFound) as error:
        services.change_request_create(actor=requester, **change_fields(ghost, envs["prod"]))
    assert error.value.code == "unknown_build"


def test_without_peer_review_in_the_policy_the_teams_come_first(org, new_change, envs):
    policy.environment_policy_change(
        actor=None,
        environment=envs["prod"],
        approval_teams=[org["model-risk"]],
        needs_peer_review=False,
    )
    assert new_change().state == State.IN_APPROVAL


def test_a_policy_with_neither_review_nor_teams_approves_on_submit(envs, new_change):
    policy.environment_policy_change(
        actor=None, environment=envs["test"], approval_teams=[], needs_peer_review=False
    )
    assert new_change("test").state == State.APPROVED


def test_an_environment_without_change_requests_refuses_one(new_change):
    with pytest.raises(RuleDenied) as error:
        new_change("dev")
    assert error.value.code == "change_request_not_needed"


@pytest.mark.parametrize(
    ("start_offset", "length", "code"),
    [
        (timedelta(days=-1), timedelta(hours=30), "window_in_past"),
    ],
)
def test_the_window_must_be_in_the_future_and_in_order(new_change, start_offset, length, code):
    start = timezone.now() + start_offset
    with pytest.raises(RuleDenied) as error:
        new_change(window_start=start, window_end=start + length)
    assert error.value.code == code


def test_a_normal_change_needs_a_window(new_change):
    with pytest.raises(RuleDenied) as error:
        new_change(window_start=None, window_end=None)
    assert error.value.code == "window_required"


def test_a_window_in_a_freeze_is_refused_and_allowed_once_lifted(envs, new_change):
    start = timezone.now() + timedelta(days=10)
    end = start + timedelta(hours=4)
    freeze = policy.freeze_window_create(
        actor=None,
        environment=envs["prod"],
        starts_at=start - timedelta(days=1),
        ends_at=start + timedelta(hours=1),
        reason="Year-end",
    )
    with pytest.raises(RuleDenied) as error:
        new_change(window_start=start, window_end=end)
    assert error.value.code == "freeze_in_effect"
    assert "Year-end" in error.value.detail
    new_change("test", window_start=start, window_end=end)
    policy.freeze_window_cancel(actor=None, freeze_window=freeze, reason="lifted")
    assert new_change(window_start=start, window_end=end).state == State.IN_REVIEW


def test_a_freeze_outside_the_window_does_not_block(envs, new_change):
    start = timezone.now() + timedelta(days=10)
    end = start + timedelta(hours=4)
    policy.freeze_window_create(
        actor=None,
        environment=envs["prod"],
        starts_at=end,
        ends_at=end + timedelta(days=3),
        reason="After",
    )
    assert new_change(window_start=start, window_end=end).state == State.IN_REVIEW


def test_editing_after_a_sign_off_voids_it_and_the_trail_shows_both(
    new_change, peer, model_risk_approver, requester
):
    change_request = new_change()
    peer_review = sign(peer, change_request)
    approval = sign(model_risk_approver, change_request)
    old_digest = change_request.content_digest

    edited = services.change_request_edit(
        actor=requester, change_request=change_request, test_evidence="Backtest on November too."
    )

    assert edited.state == State.DRAFT
    assert edited.content_digest != old_digest
    peer_review.refresh_from_db()
    approval.refresh_from_db()
    assert peer_review.voided_at is not None and approval.voided_at is not None
    assert SignOff.objects.filter(change_request=edited, voided_at__isnull=True).count() == 0
    trail = events_of(edited)
    actions = [e.action for e in trail]
    assert actions == [
        "change_request.created",
        "change_request.submitted",
        "change_request.signed",
        "change_request.signed",
        "change_request.edited",
    ]
    assert trail[2].data["sign_off"] == peer_review.pk
    assert trail[2].data["content_digest"] == old_digest
    edit = trail[-1]
    assert sorted(edit.data["voided_sign_offs"]) == sorted([peer_review.pk, approval.pk])
    assert edit.data["state_before"] == State.IN_APPROVAL
    assert edit.data["before"]["test_evidence"] != edit.data["after"]["test_evidence"]

    resubmitted = services.change_request_submit(actor=requester, change_request=edited)
    assert resubmitted.state == State.IN_REVIEW
    sign(peer, resubmitted)


def test_only_the_requester_edits_and_submits_and_a_peer_does_not_cancel(new_change, peer):
    change_request = new_change()
    for call, code in (
        (
            lambda: services.change_request_edit(
                actor=peer, change_request=change_request, title="x"
            ),
            "not_the_requester",
        ),
        (
            lambda: services.change_request_submit(actor=peer, change_request=change_request),
            "not_the_requester",
        ),
        (
            lambda: services.change_request_cancel(
                actor=peer, change_request=change_request, reason="Not mine to keep."
            ),
            "not_allowed_to_cancel",
        ),
    ):
        with pytest.raises(RuleDenied) as error:
            call()
        assert error.value.code == code


def test_cancel_follows_the_state_table(new_change, requester, approved):
    change_request = new_change()
    cancelled = services.change_request_cancel(
        actor=requester, change_request=change_request, reason="Filed for the wrong build."
    )
    assert cancelled.state == State.CANCELLED
    with pytest.raises(Conflict) as error:
        services.change_request_cancel(
            actor=requester, change_request=cancelled, reason="Once more."
        )
    assert error.value.code == "invalid_transition"
    with pytest.raises(Conflict) as error:
        services.change_request_submit(actor=requester, change_request=cancelled)
    assert error.value.code == "invalid_transition"


def test_an_approved_change_expires_only_once_its_window_is_over(approved):
    with pytest.raises(Conflict) as error:
        services.change_request_expire(actor=None, change_request=approved)
    assert error.value.code == "window_not_over"
    type(approved).objects.filter(pk=approved.pk).update(
        window_start=timezone.now() - timedelta(days=2),
        window_end=timezone.now() - timedelta(days=1),
    )
    expired = services.change_request_expire(actor=None, change_request=approved)
    assert expired.state == State.EXPIRED
    assert events_of(expired)[-1].actor_kind == "system"


def test_service_accounts_do_not_file_change_requests(ci, envs, version):
    with pytest.raises(RuleDenied) as error:
        services.change_request_create(actor=ci.account, **change_fields(version, envs["prod"]))
    assert error.value.code == "people_only"
