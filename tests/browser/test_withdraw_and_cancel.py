"""Changing your mind in Chromium: an approver withdraws their sign-off from the change request
page and the page shows who withdrew it, when and why; a change manager cancels the approved
change with a reason and the timeline shows it."""

import pytest
from playwright.sync_api import expect

from releases.states import State
from tests.conftest import TRANSACTIONAL_APPS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS),
]


@pytest.fixture
def sign_in(page, sign_in):
    """Sign out whoever is signed in, then sign `user` in."""

    def as_user(user):
        page.context.clear_cookies()
        return sign_in(user)

    return as_user


def test_an_approver_withdraws_their_sign_off_on_the_page(
    page, sign_in, approved, model_risk_approver, auditor
):
    url = f"/releases/change-requests/{approved.number}/"
    sign_in(auditor)
    page.goto(url)
    expect(page.get_by_role("button", name="Withdraw my sign-off")).to_have_count(0)

    sign_in(model_risk_approver)
    page.goto(url)
    page.get_by_label("Reason for withdrawing your sign-off").fill("The backtest used May.")
    page.get_by_role("button", name="Withdraw my sign-off").click()
    expect(page.locator(".messages")).to_contain_text(f"Your sign-off on {approved.number}")
    expect(page.locator("h1 + p .badge").first).to_have_text("In approval")
    panel = page.locator(".signoff-panel", has_text="Model Risk")
    expect(panel).to_contain_text("withdrawn by Rita Kovacs at")
    expect(panel).to_contain_text("The backtest used May.")
    expect(panel.get_by_role("link", name="Review and sign")).to_be_visible()
    expect(page.locator("table", has_text="sign_off.withdrawn")).to_contain_text(
        "reason: The backtest used May."
    )
    approved.refresh_from_db()
    assert approved.state == State.IN_APPROVAL


def test_a_change_manager_cancels_an_approved_change_on_the_page(
    page, sign_in, approved, change_manager, model_risk_approver
):
    url = f"/releases/change-requests/{approved.number}/"
    sign_in(model_risk_approver)
    page.goto(url)
    expect(page.get_by_role("button", name="Cancel the request")).to_have_count(0)

    sign_in(change_manager)
    page.goto(url)
    page.get_by_label("Reason for cancelling").fill("The vendor pulled the feature.")
    page.get_by_role("button", name="Cancel the request").click()
    expect(page.locator("h1 + p .badge").first).to_have_text("Cancelled")
    row = page.locator("tr", has_text="change_request.cancelled")
    expect(row).to_contain_text("changemgr")
    expect(row).to_contain_text("approved → cancelled")
    expect(row).to_contain_text("reason: The vendor pulled the feature.")
    expect(page.get_by_role("button", name="Cancel the request")).to_have_count(0)
    approved.refresh_from_db()
    assert approved.state == State.CANCELLED
