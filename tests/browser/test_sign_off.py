"""The electronic signature in Chromium: the signer reads the meaning, re-enters the password,
and the change moves on; a wrong password signs nothing."""

import pytest
from playwright.sync_api import expect

from releases.models import SignOff
from releases.states import State
from tests.conftest import TRANSACTIONAL_APPS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS),
]


def test_the_peer_signs_from_waiting_for_me(page, sign_in, peer, password, filed_change):
    sign_in(peer)
    page.get_by_role("link", name="Waiting for me").first.click()
    page.get_by_role("link", name="Review and sign").click()
    expect(page.locator(".meanings")).to_contain_text(
        f"I approve {filed_change.number} for prod as peer reviewer for Data Science"
    )
    page.fill("#id_password", "not-my-password")
    page.get_by_role("button", name="Sign", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("password is not right")
    assert not SignOff.objects.exists()

    page.fill("#id_password", password)
    page.get_by_role("button", name="Sign", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("Signed:")
    filed_change.refresh_from_db()
    assert filed_change.state == State.IN_APPROVAL
    expect(page.locator(".signoff-panel.signed")).to_contain_text("Per Eriksen")
