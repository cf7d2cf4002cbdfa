"""Issue 16, the must-shows the other model-risk tests leave implicit: the validation rules hold
only where the policy asks and only for normal changes, a retired model is not even rolled back,
the periodic review tells the model risk owner and then escalates to Model Risk's approvers (the
daily task on a controlled clock), and the inventory flags exactly the models in production
whose validation lapsed."""

from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model

from portal.exceptions import RuleDenied
from portal.models import Notification
from registry.model_risk import (
    finding_record,
    model_inventory_update,
    model_retire,
    validation_open,
)
from registry.models import LifecycleStatus
from registry.tasks import remind_validations_due
from releases.builders import deployment_row
from releases.services.deployments import deployment_rollback
from releases.services.gate import gate_evaluate

pytestmark = pytest.mark.django_db

VALIDATION_CODES = {"validation_missing", "findings_overdue"}


def codes(environment: str, build) -> set[str]:
    answer = gate_evaluate(environment=environment, model=build.model.name, version=build.version)
    return {reason.code for reason in answer.reasons}


@pytest.fixture
def overdue_high_finding(mirrored_builds, model_risk_approver):
    """fraud-score 2.0 with no concluded validation and a high finding past its date, recorded
    in a validation still open."""
    opened = validation_open(
        actor=model_risk_approver,
        model=mirrored_builds["2.0"].model,
        versions=["2.0"],
        scope="Full validation.",
        validator="risk",
    )
    finding_record(
        actor=model_risk_approver,
        validation=opened,
        title="No drift monitor",
        severity="high",
        owner="requester",
        remediation_due=date.today() - timedelta(days=1),
    )
    return mirrored_builds["2.0"]


def test_the_validation_rules_hold_only_where_the_policy_asks(
    overdue_high_finding, dev_needs_validation, envs
):
    assert codes("dev", overdue_high_finding) >= VALIDATION_CODES
    # test's policy does not ask for validation: the same build meets none of its rules.
    assert not envs["test"].policies.order_by("-version").first().requires_validation
    assert not VALIDATION_CODES & codes("test", overdue_high_finding)


def test_a_rollback_is_not_held_by_validation_but_a_retired_model_is_not_rolled_back(
    overdue_high_finding, mirrored_builds, dev_needs_validation, ci
):
    dev = dev_needs_validation
    deployment_row(environment=dev, model_version=overdue_high_finding)
    deployment_row(environment=dev, model_version=mirrored_builds["2.1"])
    rollback = deployment_rollback(
        actor=ci.account, environment=dev, model=overdue_high_finding.model, reason="Drift."
    )
    assert rollback.model_version == overdue_high_finding  # validation asks normal changes only

    deployment_row(environment=dev, model_version=mirrored_builds["2.1"])
    model_retire(actor=None, model=overdue_high_finding.model, change_request="CR-9")
    with pytest.raises(RuleDenied) as refused:
        deployment_rollback(
            actor=ci.account, environment=dev, model=overdue_high_finding.model, reason="Again."
        )
    assert refused.value.code == "model_retired"


def test_the_risk_owner_is_told_60_and_30_days_ahead_and_model_risk_once_it_lapsed(
    mirrored_builds, model_risk_approver, django_clock
):
    owner = get_user_model().objects.create_user("owen", email="owen@gatehouse.example")
    model = mirrored_builds["2.0"].model
    due = date(2027, 6, 30)
    model_inventory_update(
        actor=model_risk_approver, model=model, model_risk_owner="owen", next_validation_due=due
    )

    def on(day: date) -> int:
        django_clock.now = django_clock.now.replace(year=day.year, month=day.month, day=day.day)
        return remind_validations_due()

    def keys(user) -> list[str]:
        told = Notification.objects.filter(recipient=user).order_by("pk")
        return [key.rsplit(":", 1)[1] for key in told.values_list("key", flat=True)]

    assert on(due - timedelta(days=61)) == 0
    assert on(due - timedelta(days=60)) == 1
    assert on(due - timedelta(days=45)) == 0
    assert on(due - timedelta(days=30)) == 1
    assert on(due - timedelta(days=1)) == 0
    assert keys(owner) == ["60", "30"] and keys(model_risk_approver) == []
    assert on(due + timedelta(days=1)) == 2  # the escalation: Model Risk's approver, and Owen
    assert on(due + timedelta(days=2)) == 0  # once
    assert keys(owner) == ["60", "30", "lapsed"] and keys(model_risk_approver) == ["lapsed"]
    lapsed = Notification.objects.get(recipient=model_risk_approver)
    assert lapsed.subject == "fraud-score: its validation lapsed on 2027-06-30"

    model_retire(actor=None, model=model, change_request="CR-9")
    assert on(due + timedelta(days=400)) == 0  # a retired model is reviewed no more


def test_the_inventory_flags_only_models_in_production_whose_validation_lapsed(
    org, envs, model_risk_approver, auditor, login
):
    from registry.builders import build_register

    past, future = date.today() - timedelta(days=1), date.today() + timedelta(days=10)
    for name, status, due in (
        ("lapsed-live", LifecycleStatus.IN_PRODUCTION, past),
        ("current-live", LifecycleStatus.IN_PRODUCTION, future),
        ("lapsed-shelved", LifecycleStatus.APPROVED, past),
    ):
        build = build_register(name, "1.0")
        model_inventory_update(
            actor=model_risk_approver,
            model=build.model,
            lifecycle_status=status,
            next_validation_due=due,
        )
        deployment_row(environment=envs["prod"], model_version=build)
    page = login(auditor).get("/registry/inventory/").content.decode()
    rows = {row.split("</a>")[0].rsplit(">", 1)[-1]: row for row in page.split("<tr>")[2:]}
    assert (
        'data-testid="lapsed"' in rows["lapsed-live"] and "live: 1.0 in prod" in rows["lapsed-live"]
    )
    assert 'data-testid="lapsed"' not in rows["current-live"]
    assert 'data-testid="lapsed"' not in rows["lapsed-shelved"]


def test_the_inventory_export_holds_every_field_of_an_entry(
    mirrored_builds, model_risk_approver, requester, auditor, login
):
    import csv
    import io

    from openpyxl import load_workbook

    from registry.builders import build_register

    build_register(
        "transactions-features", "1.0", repository="https://git.example.com/data-science/features"
    )
    model = mirrored_builds["2.0"].model
    model_inventory_update(
        actor=model_risk_approver,
        model=model,
        purpose="Scores card-not-present fraud.",
        intended_use="Holds a payment for review.",
        prohibited_uses="Credit decisions.",
        business_owner="Head of Payments",
        model_risk_owner="risk",
        risk_tier=1,
        tier_rationale="Material: blocks payments.",
        ai_act_high_risk=True,
        regulatory_rationale="Annex III, creditworthiness adjacent.",
        upstream_models=["transactions-features"],
        upstream_datasets=["payments", "chargebacks"],
        lifecycle_status=LifecycleStatus.IN_PRODUCTION,
        next_validation_due=date(2027, 3, 31),
    )
    expected = {
        "model": "fraud-score",
        "owner team": "Data Science",
        "risk tier": "1",
        "tier rationale": "Material: blocks payments.",
        "lifecycle status": "In production",
        "purpose": "Scores card-not-present fraud.",
        "intended use": "Holds a payment for review.",
        "prohibited uses": "Credit decisions.",
        "business owner": "Head of Payments",
        "model risk owner": "risk",
        "EU AI Act high-risk": "yes",
        "regulatory rationale": "Annex III, creditworthiness adjacent.",
        "upstream models": "transactions-features",
        "upstream datasets": "payments, chargebacks",
        "next validation due": "2027-03-31",
    }
    client = login(auditor)
    rows = list(csv.DictReader(io.StringIO(client.get("/registry/inventory.csv").content.decode())))
    assert next(row for row in rows if row["model"] == "fraud-score") == expected
    sheet = load_workbook(io.BytesIO(client.get("/registry/inventory.xlsx").content)).active
    header, *cells = list(sheet.iter_rows(values_only=True))
    found = next(dict(zip(header, row, strict=True)) for row in cells if row[0] == "fraud-score")
    assert {key: str(value) for key, value in found.items()} == expected
