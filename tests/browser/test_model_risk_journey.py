"""Issue 16 in Chromium: Model Risk validates a model with a finding already past its date; the
requester's production change is held at the gate for it; the requester remediates the finding
on the model page; Model Risk then signs the change seeing the validation beside the button.
And a validation opened by Model Risk's tool over the API, signed by its validator on the page."""

from datetime import timedelta

import pytest
from django.utils import timezone
from git import Actor
from playwright.sync_api import expect

from organisation.demo import DEMO_PASSWORD
from registry.builders import build_register, repository_with_mirror, training_commits
from releases.builders import file_change, policy_amended
from tests.browser.test_journeys import in_test
from tests.conftest import TRANSACTIONAL_APPS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS),
]


@pytest.fixture
def sign_in(page, sign_in):
    def as_user(user):
        page.context.clear_cookies()
        return sign_in(user)

    return as_user


@pytest.fixture
def prod_change(envs, org, ci, requester, peer, tmp_path):
    """fraud-score 2.0 from a mirrored commit, eight days in test, its prod change peer-reviewed;
    prod requires validation."""
    commits = training_commits(1, authors=[Actor("Rhea Quinn", "rhea@bank.example")])
    sha = repository_with_mirror(tmp_path / "source", commits)[0]
    build = build_register("fraud-score", "2.0", commit_sha=sha)
    in_test(ci=ci, build=build, envs=envs, requester=requester, peer=peer, days_ago=8)
    prod = envs["prod"]
    policy_amended(prod, requires_validation=True)
    return file_change(
        requester=requester,
        model_version=build,
        environment=prod,
        signers=[peer],
        window_start=timezone.now(),
    )


def test_model_risk_validates_the_change_is_held_then_signed_seeing_the_validation(
    page, sign_in, prod_change, model_risk_approver, requester
):
    change_url = f"/releases/change-requests/{prod_change.number}/"
    sign_in(model_risk_approver)
    page.goto("/registry/models/fraud-score/")
    page.get_by_label("2.0").check()
    page.get_by_label("Scope").fill("Conceptual soundness and back-testing on 2026 Q3.")
    page.get_by_label("Outcome").select_option(label="Approved with conditions")
    page.get_by_label("Title").fill("No drift monitor on merchant features")
    page.get_by_label("Severity").select_option(label="High")
    page.get_by_label("Owner (user name)").fill(requester.username)
    yesterday = timezone.localdate() - timedelta(days=1)
    page.get_by_label("Remediation due").fill(yesterday.isoformat())
    page.get_by_label("Your password, to sign").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Conclude and sign").click()
    expect(page.locator(".messages")).to_contain_text("Validation of fraud-score concluded")

    sign_in(requester)
    page.goto(change_url)
    expect(page.locator(".gate-reasons")).to_contain_text("findings_overdue")

    page.goto("/registry/models/fraud-score/")
    finding = page.get_by_test_id("finding")
    finding.get_by_role("textbox").fill("Drift monitor deployed on the merchant features.")
    finding.get_by_role("button", name="Close the finding").click()
    expect(page.locator(".messages")).to_contain_text("closed")
    page.goto(change_url)
    expect(page.locator(".gate-reasons")).not_to_contain_text("findings_overdue")

    sign_in(model_risk_approver)
    page.goto(change_url)
    evidence = page.get_by_test_id("validation-evidence")
    expect(evidence).to_contain_text("Approved with conditions by Rita Kovacs")
    expect(evidence).to_contain_text("High, remediated")
    page.get_by_role("link", name="Review and sign").first.click()
    page.fill("#id_password", DEMO_PASSWORD)
    page.get_by_role("button", name="Sign", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("Signed:")


def test_a_validation_opened_by_model_risks_tool_is_signed_by_its_validator_in_the_browser(
    page, sign_in, prod_change, org, model_risk_approver, requester
):
    """Model Risk's workbench opens the validation and files a finding over the API; the API
    refuses to conclude it; Rita signs it on the model page; her panel on the change shows it."""
    from portal.models import Scope
    from tests.conftest import make_service_caller

    workbench = make_service_caller(org["model-risk"], "workbench", [Scope.VALIDATIONS_WRITE])
    api = workbench.client()
    opened = api.post(
        "/api/v1/models/fraud-score/validations/",
        {"versions": ["2.0"], "scope": "Annual review of 2.0.", "validator": "risk"},
        format="json",
    ).json()
    base = f"/api/v1/models/fraud-score/validations/{opened['id']}"
    due = (timezone.localdate() + timedelta(days=60)).isoformat()
    finding = {"title": "Thresholds undocumented", "severity": "low", "owner": requester.username}
    recorded = api.post(f"{base}/findings/", {**finding, "remediation_due": due}, format="json")
    assert recorded.status_code == 201
    assert api.post(f"{base}/conclude/", {}, format="json").json()["code"] == "signature_in_browser"

    sign_in(model_risk_approver)
    page.goto("/registry/models/fraud-score/")
    expect(page.get_by_test_id("validation-open")).to_contain_text("validator Rita Kovacs")
    form = page.get_by_test_id("conclude-opened")
    form.get_by_label("Outcome").select_option(label="Approved")
    form.get_by_label("Your password, to sign").fill(DEMO_PASSWORD)
    form.get_by_role("button", name="Sign the validation").click()
    expect(page.locator(".messages")).to_contain_text("Validation of fraud-score concluded")
    expect(page.get_by_test_id("validation-open")).to_have_count(0)

    page.goto(f"/releases/change-requests/{prod_change.number}/")
    evidence = page.get_by_test_id("validation-evidence")
    expect(evidence).to_contain_text("Approved by Rita Kovacs")
    expect(evidence).to_contain_text("Thresholds undocumented")
