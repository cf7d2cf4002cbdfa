"""Looks and ease (issue 8) in Chromium: the keyboard reaches the content and shows where it
is, and the main pages fit a narrow window without scrolling sideways."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import TRANSACTIONAL_APPS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS),
]


def test_the_keyboard_skips_to_the_content_and_shows_its_focus(page, sign_in, peer):
    sign_in(peer)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to the content")
    expect(skip).to_be_focused()
    assert skip.bounding_box()["x"] >= 0
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#main$"))
    page.keyboard.press("Tab")
    focused = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert focused != "none"


@pytest.mark.parametrize("width", [390, 1280])
def test_the_main_pages_fit_the_window(page, sign_in, peer, filed_change, width):
    page.set_viewport_size({"width": width, "height": 800})
    sign_in(peer)
    for path in [
        "/",
        "/releases/waiting/",
        f"/releases/change-requests/{filed_change.number}/",
        f"/releases/change-requests/{filed_change.number}/sign/",
        "/releases/environments/prod/",
        "/releases/change-requests/",
        "/absences/",
    ]:
        page.goto(path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at {width}px"
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def test_the_top_bar_marks_where_you_are(page, sign_in, peer):
    sign_in(peer)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Dashboard")).to_have_attribute("aria-current", "page")
    nav.get_by_role("link", name="Waiting for me").click()
    expect(nav.get_by_role("link", name="Waiting for me")).to_have_attribute("aria-current", "page")
    expect(nav.locator("[aria-current]")).to_have_count(1)
