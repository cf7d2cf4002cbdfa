"""Delegation in Chromium (issue 17): Rita Kovacs records her holiday with Milan Novak as her
delegate from the user menu; Milan finds the production change waiting for Model Risk, signs it
as her delegate, and the change page says so."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from organisation import services as org_services
from organisation.demo import DEMO_PASSWORD
from portal.models import Absence
from releases.builders import sign
from releases.models import SignOff
from tests.conftest import TRANSACTIONAL_APPS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS),
]


@pytest.fixture
def deputy(org):
    user = org_services.user_create(
        actor=None,
        username="riskdeputy",
        password=DEMO_PASSWORD,
        first_name="Milan",
        last_name="Novak",
    )
    org_services.membership_set(actor=None, user=user, team=org["model-risk"], is_approver=True)
    return user


def test_an_approver_goes_away_and_her_delegate_signs(
    page, sign_in, model_risk_approver, deputy, filed_change, peer, password
):
    sign(peer, filed_change)
    today = timezone.localdate()

    sign_in(model_risk_approver)
    page.get_by_role("link", name="My absences").click()
    expect(page.get_by_role("heading", name="My absences")).to_be_visible()
    page.fill("#id_starts_on", today.isoformat())
    page.fill("#id_ends_on", (today + timedelta(days=7)).isoformat())
    page.select_option("#id_delegate", label="Milan Novak (Model Risk)")
    page.get_by_role("button", name="Record the absence").click()
    expect(page.locator(".messages")).to_contain_text("Milan Novak signs for Model Risk")
    expect(page.locator("table")).to_contain_text("Away now")
    assert Absence.objects.get().delegate == deputy
    page.get_by_role("button", name="Sign out").click()

    sign_in(deputy)
    expect(page.locator("main")).to_contain_text("as delegate of Rita Kovacs")
    page.get_by_role("link", name="Everything waiting for me").click()
    row = page.locator("tr", has_text=filed_change.number)
    expect(row).to_contain_text("as delegate of Rita Kovacs")
    row.get_by_role("link", name="Review and sign").click()
    expect(page.locator(".meanings")).to_contain_text(
        f"I approve {filed_change.number} for prod on behalf of Model Risk, "
        "as delegate of Rita Kovacs"
    )
    page.fill("#id_password", password)
    page.get_by_role("button", name="Sign", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("as delegate of Rita Kovacs")
    panel = page.locator(".signoff-panel.signed", has_text="Model Risk")
    expect(panel).to_contain_text("by Milan Novak, as delegate of Rita Kovacs")
    sign_off = SignOff.objects.get(on_behalf_of=model_risk_approver)
    assert sign_off.signer == deputy and sign_off.team.slug == "model-risk"
