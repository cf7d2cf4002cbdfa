"""Rules 3 and 5 under a race, next to `test_sign_offs.py`: the last approval and a rejection
arriving together end in exactly one final state, and a sign-off racing an edit either lands
before the edit (and is voided by it) or is refused cleanly; never a signature standing under
content its signer did not see. The audit trail tells the same story as the rows."""

import pytest
from django.db import connection

from audit.models import AuditEvent
from audit.verification import verify_chain
from organisation import services as org_services
from portal.exceptions import DomainError
from registry.builders import build_register
from releases.builders import change_fields, environments_create, sign
from releases.models import SignOff
from releases.services import change_requests as services
from releases.states import State
from tests.concurrency.helpers import person, race
from tests.conftest import TRANSACTIONAL_APPS

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="races need PostgreSQL"),
    pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS),
]


def _sign(username: str, change_request, digest: str, decision: str = "approve"):
    return sign(
        person(username),
        change_request,
        decision,
        comment="" if decision == "approve" else "The backtest misses November.",
        content_digest=digest,
    )


def _tail() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


@pytest.fixture
def one_signature_left(org):
    """A prod change with peer review, Model Risk and Release Management signed: Platform
    Operations is the last team it waits for."""
    environments = environments_create()
    version = build_register("fraud-detector", "1.0.0")
    change_request = services.change_request_file(
        actor=person("requester"), **change_fields(version, environments["prod"])
    )
    for username in ("peer", "risk", "release"):
        change_request.refresh_from_db()
        _sign(username, change_request, change_request.content_digest)
    change_request.refresh_from_db()
    assert change_request.state == State.IN_APPROVAL
    return change_request


@pytest.fixture
def second_platform_approver(org):
    second = person("auditor")
    org_services.membership_set(
        actor=None, user=second, team=org["platform-operations"], is_approver=True
    )
    return second


def test_last_approval_and_a_rejection_end_in_one_final_state(
    one_signature_left, second_platform_approver
):
    change_request = one_signature_left
    digest = change_request.content_digest
    start = _tail()

    results, errors = race(
        [
            lambda: _sign("platform", change_request, digest),
            lambda: _sign("auditor", change_request, digest, decision="reject"),
        ]
    )

    # Both sign for the one open slot: the first to take the lock fills it and ends the
    # review; the other finds nothing left to sign.
    assert len(results) == 1 and len(errors) == 1
    assert isinstance(errors[0], DomainError)
    assert errors[0].code in {"invalid_transition", "complete", "team_already_signed"}
    change_request.refresh_from_db()
    winner = results[0]
    assert change_request.state == (
        State.APPROVED if winner.decision == "approve" else State.REJECTED
    )
    events = list(AuditEvent.objects.filter(seq__gt=start).order_by("seq"))
    assert [e.action for e in events if e.action == "change_request.signed"] == [
        "change_request.signed"
    ]
    signed = next(e for e in events if e.action == "change_request.signed")
    assert signed.data["sign_off"] == winner.pk
    assert (signed.data["state_before"], signed.data["state_after"]) == (
        State.IN_APPROVAL,
        change_request.state,
    )
    assert (
        SignOff.objects.filter(change_request=change_request, voided_at__isnull=True).count() == 4
    )
    assert verify_chain().ok


def test_a_sign_off_racing_an_edit_never_stands_under_new_content(one_signature_left):
    change_request = one_signature_left
    digest = change_request.content_digest
    start = _tail()

    _, errors = race(
        [
            lambda: _sign("platform", change_request, digest),
            lambda: services.change_request_edit(
                actor=person("requester"),
                change_request=change_request,
                rollback_plan="Roll back to 1.0 and page the on-call data scientist.",
            ),
        ]
    )

    change_request.refresh_from_db()
    assert change_request.state == State.DRAFT
    assert change_request.content_digest != digest
    # Whatever the order, no sign-off stands: either it came first and the edit voided it, or
    # it came second and was refused because the content changed under it.
    assert not SignOff.objects.filter(
        change_request=change_request, voided_at__isnull=True
    ).exists()
    actions = list(
        AuditEvent.objects.filter(seq__gt=start).order_by("seq").values_list("action", flat=True)
    )
    if errors:
        assert len(errors) == 1 and isinstance(errors[0], DomainError)
        assert errors[0].code in {"content_changed", "invalid_transition"}
        assert "change_request.signed" not in actions
        voided = 3
    else:
        # The signature came first and moved the change to approved; the edit voided all four.
        assert actions.index("change_request.signed") < actions.index("change_request.edited")
        voided = 4
    edited = AuditEvent.objects.get(seq__gt=start, action="change_request.edited")
    assert len(edited.data["voided_sign_offs"]) == voided
    assert verify_chain().ok
