import re

import pytest
from playwright.sync_api import expect

from tests.conftest import TRANSACTIONAL_APPS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS),
]


def test_a_demo_user_signs_in_and_sees_their_teams(page, sign_in, model_risk_approver):
    sign_in(model_risk_approver)
    expect(page.locator("h1")).to_contain_text("Rita")
    expect(page.locator("table")).to_contain_text("Model Risk")
    expect(page.locator("table")).to_contain_text("Approver")


def test_wrong_password_stays_on_the_sign_in_page(page, requester):
    page.goto("/login/")
    page.fill("#id_username", "requester")
    page.fill("#id_password", "not-the-password")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("The username or the password is not right")
    expect(page.get_by_role("alert")).to_contain_text(
        "An administrator resets a forgotten password"
    )
    assert re.search(r"/login/$", page.url)


def test_pages_load_no_asset_from_the_web(page, sign_in, requester, live_server):
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    sign_in(requester)
    page.reload()
    assert requested
    assert all(url.startswith(live_server.url) for url in requested), requested
