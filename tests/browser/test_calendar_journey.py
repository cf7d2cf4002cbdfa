"""Issue 18 in Chromium: the requester finds next week's changes on the calendar, is told on
filing that a change to a model hers depends on is in the same window, subscribes her calendar
(the address read without a session, then revoked); the release manager prints the CAB's
agenda, which shows the conflict and what each change still lacks."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from icalendar import Calendar
from playwright.sync_api import expect

from registry import services as registry
from registry.builders import build_register
from registry.model_risk import model_inventory_update
from releases.builders import file_change
from releases.services import policy
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
def next_week(envs, fraud, requester, peer, settings, live_server):
    """prod is production; fraud-score reads credit-features, whose prod change is filed for
    next Tuesday 09:00 to 13:00; the feeds' addresses name the live server."""
    settings.PORTAL_BASE_URL = live_server.url
    prod = envs["prod"]
    policy.environment_update(
        actor=None, environment=prod, rank=prod.rank, description="", is_production=True
    )
    features = registry.model_register(
        actor=None, name="credit-features", owner_team="data-science"
    )[0]
    model_inventory_update(actor=requester, model=fraud, upstream_models=[features.name])
    today = timezone.localdate()
    tuesday = today + timedelta(days=7 - today.weekday() + 1)
    start = timezone.make_aware(datetime.combine(tuesday, datetime.min.time())) + timedelta(hours=9)
    upstream = file_change(
        model_version=build_register(features.name, "4.0"),
        environment=prod,
        requester=requester,
        signers=[peer],
        window_start=start,
        hours=4,
    )
    return {"start": start, "upstream": upstream, "build": build_register(fraud.name, "2.0")}


def test_the_week_ahead_from_calendar_to_cab_agenda(
    page, sign_in, next_week, requester, release_approver, browser, live_server
):
    start, upstream = next_week["start"], next_week["upstream"]
    sign_in(requester)
    page.get_by_role("link", name="Calendar").click()
    page.get_by_role("link", name="Next", exact=True).click()
    row = page.get_by_role("row").filter(has_text="prod")
    expect(row).to_contain_text(f"{upstream.number} credit-features 4.0 → prod")
    expect(row).to_contain_text("09:00-13:00")

    # She files fraud-score 2.0 for the same morning and is told of the dependency at once.
    page.goto("/releases/change-requests/new/")
    page.get_by_label("Model and version").select_option(value=str(next_week["build"].pk))
    page.get_by_label("Environment").select_option(label="prod")
    page.get_by_label("Title").fill("Retrained on October")
    page.get_by_label("Justification").fill("Better recall.")
    page.get_by_label("Rollback plan").fill("Roll back to 1.9.")
    local = timezone.localtime(start)
    page.get_by_label("Window starts").fill(local.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Window ends").fill((local + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="File").click()
    expect(page.locator(".message.warning")).to_contain_text(
        f"dependency_conflict: {upstream.number} changes credit-features "
        "(fraud-score depends on it)"
    )
    number = page.locator("h1").inner_text().split()[0]

    # The month, freezes only: none.
    page.goto(f"/releases/calendar/?view=month&date={start.date().isoformat()}&kind=freeze")
    expect(page.locator(".calendar")).not_to_contain_text("→ prod")

    # Her calendar in Outlook: an address read without signing in, until she revokes it.
    page.goto("/releases/calendar/")
    page.get_by_role("link", name="Subscribe (iCalendar)").click()
    mine = page.locator("section", has_text="Your calendar")
    mine.get_by_role("button", name="Issue an address").click()
    address = page.get_by_label("Calendar feed address").input_value()
    assert address.startswith(live_server.url) and address.endswith(".ics")
    outlook = browser.new_context()
    fetched = outlook.request.get(address)
    assert fetched.status == 200
    summaries = [
        str(event["summary"]) for event in Calendar.from_ical(fetched.body()).walk("VEVENT")
    ]
    assert f"{number} fraud-score 2.0 → prod" in summaries
    page.goto("/releases/calendar/feeds/")
    page.locator("section", has_text="Your calendar").get_by_role("button", name="Revoke").click()
    expect(page.locator(".messages")).to_contain_text("answers no more")
    assert outlook.request.get(address).status == 404
    outlook.close()

    # The release manager's agenda for the CAB, printed without the portal around it.
    sign_in(release_approver)
    page.goto(f"/releases/cab/?from={start.date().isoformat()}&days=1")
    items = page.locator("tr.cab-item")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("dependency_conflict")
    expect(items.first).to_contain_text("missing Model Risk")
    expect(items.nth(1)).to_contain_text(number)
    expect(items.nth(1)).to_contain_text("missing Peer review (Data Science)")
    page.emulate_media(media="print")
    expect(page.locator(".topbar")).to_be_hidden()
    expect(page.get_by_role("button", name="Print the agenda")).to_be_hidden()
    expect(items.first).to_be_visible()
