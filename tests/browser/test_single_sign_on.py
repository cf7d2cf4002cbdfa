"""Single sign-on in Chromium against a real OpenID provider (tests/oidc/provider.js): Alma
signs in at the bank's provider, then signs a change by signing in there again; a sign-in the
provider reports as old signs nothing."""

import pytest
from playwright.sync_api import expect

from releases.builders import sign
from releases.models import SignOff
from tests.conftest import TRANSACTIONAL_APPS
from tests.oidc.conftest import ALMA, BERT, TEAM_GROUPS
from tests.oidc.server import MFA_ACR, provider_running

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS),
]


@pytest.fixture(scope="module")
def provider_for_the_browser(live_server, tmp_path_factory):
    """The provider with the live server's callbacks registered."""
    with provider_running(tmp_path_factory.mktemp("provider"), [live_server.url]) as provider:
        yield provider


@pytest.fixture
def bank_sso(provider_for_the_browser, settings, org):
    provider_for_the_browser.configure(settings, OIDC_TEAM_GROUPS=TEAM_GROUPS)
    provider_for_the_browser.people(ALMA, BERT)
    return provider_for_the_browser


def _sign_in_at_provider(page, *, acr: str = MFA_ACR, age: int = 0):
    expect(page.locator("h1")).to_have_text("Test provider sign-in")
    page.fill("#username", ALMA.username)
    page.fill("#password", ALMA.password)
    page.select_option("#acr", acr)
    page.fill("#age", str(age))
    page.click("#submit")


def test_alma_signs_in_and_signs_at_the_provider(page, bank_sso, new_change, peer):
    change_request = new_change()
    sign(peer, change_request)

    page.goto("/login/")
    page.get_by_role("link", name="Sign in with Bank SSO").click()
    _sign_in_at_provider(page)
    page.wait_for_url("**/")
    expect(page.locator("body")).to_contain_text("Model Risk")

    page.goto(f"/releases/change-requests/{change_request.number}/sign/?team=model-risk")
    expect(page.locator("#id_password")).to_have_count(0)
    page.get_by_role("button", name="Sign in again at Bank SSO and sign").click()
    # The provider asks again although Alma signed in there a moment ago; she answers with an
    # old sign-in first, as a provider that ignored prompt=login would.
    _sign_in_at_provider(page, age=900)
    expect(page.locator(".messages")).to_contain_text("earlier sign-in")
    assert not SignOff.objects.filter(signer__username="alma").exists()

    page.goto(f"/releases/change-requests/{change_request.number}/sign/?team=model-risk")
    page.get_by_role("button", name="Sign in again at Bank SSO and sign").click()
    _sign_in_at_provider(page)
    expect(page.locator(".messages")).to_contain_text(
        f"Signed: “I approve {change_request.number} for prod on behalf of Model Risk”."
    )
    expect(page.locator(".signoff-panel.signed").filter(has_text="Alma Risk")).to_contain_text(
        "signed in again at the identity provider"
    )
    sign_off = SignOff.objects.get(signer__username="alma")
    assert sign_off.acr == MFA_ACR and sign_off.auth_time is not None
