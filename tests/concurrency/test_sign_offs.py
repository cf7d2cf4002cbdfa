"""Rules 3 and 4 under a race. Every sign-off locks the change request row first, so two last
signatures arriving together give exactly one move to approved, and two approvers of one team
signing together give one sign-off for that team."""

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from organisation import services as org_services
from organisation.demo import seed_organisation
from portal.exceptions import DomainError
from portal.models import Team
from registry.builders import build_register
from releases.builders import change_fields, sign
from releases.models import ChangeRequest, SignOff
from releases.services import change_requests as services
from releases.services import policy
from releases.states import State
from tests.concurrency.helpers import person, race
from tests.conftest import TRANSACTIONAL_APPS

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="races need PostgreSQL"),
    pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS),
]


@pytest.fixture
def in_approval(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    seed_organisation()
    org = {team.slug: team for team in Team.objects.all()}
    suffix = str(ChangeRequest.objects.count())
    environments = {
        name: policy.environment_create(actor=None, name=f"{name}-{suffix}", rank=rank)
        for rank, name in enumerate(["test", "prod"], start=1)
    }
    policy.environment_policy_change(
        actor=None,
        environment=environments["prod"],
        approval_teams=[org["model-risk"], org["release-management"], org["platform-operations"]],
    )
    version = build_register("fraud-detector", f"race-{suffix}")
    change_request = services.change_request_file(
        actor=person("requester"), **change_fields(version, environments["prod"])
    )
    sign(person("peer"), change_request)
    change_request.refresh_from_db()
    return org, change_request


def test_two_last_sign_offs_give_exactly_one_move_to_approved(in_approval):
    _, change_request = in_approval
    sign(person("risk"), change_request)
    change_request.refresh_from_db()
    start = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()

    results, errors = race(
        [
            lambda: sign(person("release"), change_request),
            lambda: sign(person("platform"), change_request),
        ]
    )

    assert errors == [] and len(results) == 2
    change_request.refresh_from_db()
    assert change_request.state == State.APPROVED
    moves = [
        (e.data["state_before"], e.data["state_after"])
        for e in AuditEvent.objects.filter(seq__gt=start, action="change_request.signed")
    ]
    assert sorted(moves) == [
        (State.IN_APPROVAL, State.APPROVED),
        (State.IN_APPROVAL, State.IN_APPROVAL),
    ]


def test_two_approvers_of_one_team_give_one_sign_off_for_it(in_approval):
    org, change_request = in_approval
    second = person("auditor")
    org_services.membership_set(actor=None, user=second, team=org["model-risk"], is_approver=True)

    results, errors = race(
        [
            lambda: sign(person("risk"), change_request, team=org["model-risk"]),
            lambda: sign(person("auditor"), change_request, team=org["model-risk"]),
        ]
    )

    assert len(results) == 1 and len(errors) == 1
    assert isinstance(errors[0], DomainError) and errors[0].code == "team_already_signed"
    assert (
        SignOff.objects.filter(
            change_request=change_request, team=org["model-risk"], voided_at__isnull=True
        ).count()
        == 1
    )


def test_a_principal_and_their_delegate_signing_together_give_one_sign_off(in_approval):
    """One sign-off per person counts the absent principal too, under a race: Rita Kovacs
    approving for Release Management while her delegate approves for Model Risk on her behalf
    give one of the two, never both."""
    org, change_request = in_approval
    rita, deputy = person("risk"), person("auditor")
    for user, team in ((deputy, "model-risk"), (rita, "release-management")):
        org_services.membership_set(actor=None, user=user, team=org[team], is_approver=True)
    today = timezone.localdate()
    org_services.absence_set(
        actor=rita,
        person=rita,
        team=org["model-risk"],
        delegate=deputy,
        starts_on=today,
        ends_on=today,
    )

    results, errors = race(
        [
            lambda: sign(person("risk"), change_request, team=org["release-management"]),
            lambda: sign(person("auditor"), change_request, on_behalf_of=person("risk")),
        ]
    )

    assert len(results) == 1 and len(errors) == 1
    assert errors[0].code in {"already_signed", "principal_already_signed"}
    standing = SignOff.objects.filter(change_request=change_request, voided_at__isnull=True)
    assert standing.filter(signer=rita).count() + standing.filter(on_behalf_of=rita).count() == 1
