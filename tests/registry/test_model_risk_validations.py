"""Issue 16: a validation opened for a named validator is concluded by that validator alone, as
an electronic signature, independence checked again at the moment of signing; once signed its
findings no longer change. Model Risk's independence also holds for closing findings."""

from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from organisation.demo import DEMO_PASSWORD
from organisation.services import membership_set
from portal.exceptions import Conflict, RuleDenied
from registry.model_risk import (
    finding_close,
    finding_record,
    validation_conclude_opened,
    validation_open,
)
from registry.models import LifecycleStatus, Validation

pytestmark = pytest.mark.django_db


@pytest.fixture
def second_validator(org):
    """Another member of Model Risk."""
    user = get_user_model().objects.create_user(
        "vera", email="vera@gatehouse.example", password=DEMO_PASSWORD, first_name="Vera"
    )
    membership_set(actor=None, user=user, team=org["model-risk"])
    return user


@pytest.fixture
def opened(mirrored_builds, model_risk_approver) -> Validation:
    return validation_open(
        actor=model_risk_approver,
        model=mirrored_builds["2.0"].model,
        versions=["2.0"],
        scope="Back-testing on 2026 Q3.",
        validator="risk",
    )


def record(actor, validation, **fields):
    return finding_record(
        actor=actor,
        validation=validation,
        **{
            "title": "Drift monitor",
            "severity": "high",
            "owner": "requester",
            "remediation_due": date.today() + timedelta(days=30),
            **fields,
        },
    )


def sign(actor, validation, **fields):
    return validation_conclude_opened(
        actor=actor,
        validation=validation,
        **{"outcome": "conditions", "password": DEMO_PASSWORD, **fields},
    )


def test_only_the_named_validator_signs_with_the_password_and_only_once(
    opened, model_risk_approver, second_validator, requester
):
    record(model_risk_approver, opened)
    for someone in (second_validator, requester):
        with pytest.raises(RuleDenied) as refused:
            sign(someone, opened)
        assert refused.value.code == "not_the_validator"
    with pytest.raises(RuleDenied) as refused:
        sign(model_risk_approver, opened, password="not the password")
    assert refused.value.code == "reauth_failed"
    with pytest.raises(ValidationError):
        sign(model_risk_approver, opened, outcome="maybe")
    opened.refresh_from_db()
    assert opened.is_open and not AuditEvent.objects.filter(action="validation.concluded")

    signed = sign(model_risk_approver, opened)
    assert signed.outcome == "conditions" and signed.reauthenticated
    assert signed.meaning == (
        "I conclude the validation of fraud-score 2.0 as approved with conditions for Model Risk"
    )
    signed.model.refresh_from_db()
    assert signed.model.next_validation_due == signed.valid_until.date()
    assert signed.model.lifecycle_status == LifecycleStatus.APPROVED
    with pytest.raises(Conflict) as refused:
        sign(model_risk_approver, opened)
    assert refused.value.code == "validation_concluded"
    with pytest.raises(Conflict) as refused:
        record(model_risk_approver, opened, title="An afterthought")
    assert refused.value.code == "validation_concluded"
    assert signed.findings.count() == 1


def test_independence_is_checked_again_when_the_validator_signs(opened, org, model_risk_approver):
    membership_set(actor=None, user=model_risk_approver, team=org["data-science"])
    with pytest.raises(RuleDenied) as refused:
        sign(model_risk_approver, opened)
    assert refused.value.code == "validator_not_independent"
    assert Validation.objects.get().is_open


def test_a_validator_who_left_model_risk_no_longer_signs(opened, org, model_risk_approver):
    from portal.models import Membership

    Membership.objects.filter(user=model_risk_approver, team=org["model-risk"]).delete()
    with pytest.raises(RuleDenied) as refused:
        sign(model_risk_approver, opened)
    assert refused.value.code == "not_model_risk"


def test_only_independent_model_risk_records_findings_and_only_while_open(
    opened, org, requester, peer, second_validator
):
    for outsider in (requester, peer):
        with pytest.raises(RuleDenied) as refused:
            record(outsider, opened)
        assert refused.value.code == "not_model_risk"
    membership_set(actor=None, user=second_validator, team=org["data-science"])
    with pytest.raises(RuleDenied) as refused:
        record(second_validator, opened)
    assert refused.value.code == "validator_not_independent"
    assert not opened.findings.exists()


def test_a_model_risk_member_in_the_owner_team_closes_a_finding_only_as_its_owner(
    opened, org, model_risk_approver, second_validator, requester
):
    mine = record(model_risk_approver, opened, owner="vera")
    theirs = record(model_risk_approver, opened, title="Docs")
    membership_set(actor=None, user=second_validator, team=org["data-science"])
    with pytest.raises(RuleDenied) as refused:
        finding_close(actor=second_validator, finding=theirs, status="accepted", note="Fine.")
    assert refused.value.code == "not_allowed_to_close_finding"
    with pytest.raises(RuleDenied) as refused:
        finding_close(actor=second_validator, finding=mine, status="accepted", note="Fine.")
    assert refused.value.code == "not_allowed_to_close_finding"
    finding_close(actor=second_validator, finding=mine, status="remediated", note="Fixed.")
    finding_close(actor=model_risk_approver, finding=theirs, status="accepted", note="Low risk.")
    assert AuditEvent.objects.filter(action="finding.closed").count() == 2


def test_the_model_page_offers_the_signature_to_the_named_validator_alone(
    opened, model_risk_approver, second_validator, login
):
    url = f"/registry/models/fraud-score/validations/{opened.pk}/conclude/"
    page = login(second_validator).get("/registry/models/fraud-score/").content.decode()
    assert 'data-testid="validation-open"' in page and 'data-testid="conclude-opened"' not in page
    refused = login(second_validator).post(
        url, {"outcome": "approved", "password": DEMO_PASSWORD}, follow=True
    )
    assert "only they conclude it" in refused.content.decode()
    client = login(model_risk_approver)
    assert (
        'data-testid="conclude-opened"'
        in client.get("/registry/models/fraud-score/").content.decode()
    )
    wrong = client.post(url, {"outcome": "approved", "password": "nope"}, follow=True)
    assert "The password does not match" in wrong.content.decode()
    missing = client.post(
        f"/registry/models/fraud-score/validations/{opened.pk + 1000}/conclude/",
        {"outcome": "approved", "password": DEMO_PASSWORD},
    )
    assert missing.status_code == 404
    signed = client.post(url, {"outcome": "approved", "password": DEMO_PASSWORD}, follow=True)
    html = signed.content.decode()
    assert "concluded and signed" in html and 'data-testid="validation-open"' not in html
