"""Issue 19, from the user's side: the places where a person stopped, guessed or was misled."""

import hashlib

import pytest

from registry.views import CI_HELPER
from tests.conftest import TRANSACTIONAL_APPS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS),
]


def test_an_engineer_downloads_the_ci_helper_and_reads_its_checksum(page, sign_in, requester):
    sign_in(requester)
    page.goto("/registry/")
    with page.expect_download() as download:
        page.get_by_role("link", name="CI helper (gatehouse_ci.py)").click()
    downloaded = download.value.path().read_bytes()

    page.get_by_role("link", name="sha256", exact=True).click()

    published = page.locator("body").inner_text().strip()
    assert published == f"{hashlib.sha256(downloaded).hexdigest()}  gatehouse_ci.py"
    assert downloaded == CI_HELPER.read_bytes()
