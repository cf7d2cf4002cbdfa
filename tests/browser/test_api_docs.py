import pytest
from playwright.sync_api import expect

from tests.conftest import TRANSACTIONAL_APPS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS),
]


def test_swagger_ui_renders_from_local_files_under_the_csp(page, sign_in, requester, live_server):
    violations, requested = [], []
    page.on("console", lambda message: violations.append(message.text))
    page.on("request", lambda request: requested.append(request.url))
    sign_in(requester)
    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .title")).to_contain_text("Gatehouse API")
    assert all(url.startswith(live_server.url) for url in requested), requested
    assert not [text for text in violations if "Content Security Policy" in text], violations
