"""Issue 19, from the user's side: the places where a person stopped, guessed or was misled."""

import hashlib
import re
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from audit.services import audit_verify, auditor_add
from registry.views import CI_HELPER
from releases.builders import change_fields, release_to_test
from releases.models import ChangeRequest
from releases.selectors.windows import next_windows
from releases.services.change_requests import change_request_cancel, change_request_create
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


def test_an_auditor_types_a_change_number_and_finds_its_deployments(
    page, sign_in, auditor, envs, builds, ci, clock, requester, peer, django_clock
):
    auditor_add(actor=None, user=auditor)
    deployment = release_to_test(envs, builds["1.0"], ci.account, clock, requester, peer)
    number = deployment.change_request.number

    sign_in(auditor)
    page.goto(f"/releases/change-requests/{number}/")
    page.get_by_test_id("timeline-link").click()
    page.get_by_test_id("audit-about-link").click()

    expect(page.get_by_label("About")).to_have_value(number)
    expect(page.get_by_test_id("about-label")).to_have_text(
        f"About: {number}, its build and 1 deployment"
    )
    table = page.locator("table.audit-events")
    expect(table).to_contain_text("releases.deployment")
    expect(table).to_contain_text("registry.modelversion")
    expect(table).to_contain_text("change_request.created")

    page.get_by_label("About").fill("no-such-model")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_test_id("about-label")).to_contain_text("Nothing called “no-such-model”")
    expect(table).to_contain_text("No events match.")


def test_a_requester_sees_the_timeline_of_their_change_without_audit_rights(
    page, sign_in, requester, filed_change
):
    sign_in(requester)
    page.goto(f"/releases/change-requests/{filed_change.number}/")
    page.get_by_test_id("timeline-link").click()

    expect(page.locator("#timeline")).to_contain_text("change_request.created")
    expect(page.get_by_test_id("audit-about-link")).to_have_count(0)


@pytest.fixture
def zurich_page(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url,
        timezone_id="Europe/Zurich",
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_a_requester_in_zurich_files_in_local_time_without_computing_utc(
    zurich_page, password, requester, envs, version
):
    page = zurich_page
    page.goto("/login/")
    page.fill("#id_username", requester.username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    page.goto("/releases/change-requests/new/?environment=test")

    start, end = next_windows([envs["test"]])[envs["test"].pk]
    zurich = ZoneInfo("Europe/Zurich")
    expect(page.get_by_label("Time zone of the window")).to_have_value("Europe/Zurich")
    expect(page.get_by_label("Window starts")).to_have_value(
        start.astimezone(zurich).strftime("%Y-%m-%dT%H:%M")
    )
    expect(page.get_by_label("Window ends")).to_have_value(
        end.astimezone(zurich).strftime("%Y-%m-%dT%H:%M")
    )

    page.get_by_label("Model and version").select_option(str(version.pk))
    page.get_by_label("Title").fill("Release in local time")
    page.get_by_label("Justification").fill("Better recall.")
    page.get_by_label("Rollback plan").fill("Roll back.")
    page.get_by_role("button", name="File for review").click()

    expect(page.locator("h1")).to_contain_text("Release in local time")
    filed = ChangeRequest.objects.get()
    assert (filed.window_start, filed.window_end) == (start, end)


def test_a_requester_reads_who_can_fix_the_missing_commit_list(
    page, sign_in, requester, filed_change
):
    sign_in(requester)
    page.goto(f"/releases/change-requests/{filed_change.number}/")

    note = page.get_by_role("note").filter(has_text="The commits are not listed here")
    expect(note).to_contain_text("no local mirror of")
    expect(note).to_contain_text("An administrator can fix this: Admin → Repositories")
    expect(page.get_by_role("alert")).to_have_count(0)


def test_an_auditor_reads_how_stale_the_trail_intact_banner_is(
    page, sign_in, auditor, filed_change
):
    auditor_add(actor=None, user=auditor)
    audit_verify(actor=None)
    change_request_cancel(
        actor=filed_change.requester, change_request=filed_change, reason="Not needed."
    )

    sign_in(auditor)
    page.goto("/audit/")

    banner = page.get_by_role("status")
    expect(banner).to_contain_text("Trail intact")
    expect(page.get_by_test_id("audit-freshness")).to_contain_text(
        "1 event came after it and is not verified yet."
    )
    expect(page.get_by_test_id("audit-freshness")).to_contain_text(
        "The next verification runs at about"
    )


def test_a_stale_tab_submits_again_and_reads_a_409_with_the_reason(
    page, sign_in, requester, envs, version
):
    draft = change_request_create(actor=requester, **change_fields(version, envs["prod"]))
    sign_in(requester)
    stale = page.context.new_page()
    stale.goto(f"/releases/change-requests/{draft.number}/")
    page.goto(f"/releases/change-requests/{draft.number}/")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("button", name="Submit")).to_have_count(0)

    with stale.expect_response(lambda r: r.request.method == "POST") as answer:
        stale.get_by_role("button", name="Submit").click()

    assert answer.value.status == 409
    expect(stale.locator(".messages")).to_contain_text("only a draft is submitted")
    expect(stale.locator("h1")).to_contain_text(draft.number)


def test_a_person_sees_until_when_they_are_signed_in_and_signs_out_everywhere(
    browser, live_server, page, sign_in, requester, password
):
    other = browser.new_context(base_url=live_server.url)
    laptop = other.new_page()
    laptop.goto("/login/")
    laptop.fill("#id_username", requester.username)
    laptop.fill("#id_password", password)
    laptop.click("button[type=submit]")
    laptop.wait_for_url("**/")

    sign_in(requester)
    whoami = page.get_by_test_id("whoami")
    expect(whoami).to_contain_text(f"Signed in as {requester.get_full_name()} until ")
    whoami.click()
    expect(page.get_by_test_id("session-ends")).to_contain_text("without a request signs you out")
    page.get_by_label("Sign me out in every browser").check()
    page.get_by_role("button", name="Sign out everywhere").click()

    page.wait_for_url("**/login/")
    expect(page.locator(".messages")).to_contain_text("Signed out everywhere: 2 sessions ended.")
    laptop.goto("/releases/change-requests/")
    assert "/login/" in laptop.url
    other.close()


def test_a_requester_reads_what_to_do_about_each_reason_the_gate_gives(
    page, sign_in, requester, approved
):
    sign_in(requester)
    page.goto(f"/releases/change-requests/{approved.number}/")

    gate = page.get_by_role("region", name="Deployment gate")
    expect(gate).to_contain_text("The gate would refuse a deployment now")
    reasons = gate.locator("ul.gate-reasons")
    starts = timezone.localtime(approved.window_start).strftime("%Y-%m-%d %H:%M %Z")
    expect(reasons).to_contain_text(f"outside_window {approved.number} is valid from")
    expect(reasons).to_contain_text(f"Wait until {starts} to deploy.")
    expect(reasons).to_contain_text(
        "Deploy it to test; the soak holds 7 days after it goes live there."
    )


def test_someone_who_may_not_edit_a_change_reads_whom_to_ask(
    page, sign_in, peer, requester, filed_change
):
    sign_in(peer)
    with page.expect_response(lambda r: r.url.endswith("/edit/")) as answer:
        page.goto(f"/releases/change-requests/{filed_change.number}/edit/")

    assert answer.value.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")
    expect(page.get_by_role("alert")).to_have_text(
        f"Only the requester of {filed_change.number}, {requester.get_full_name()}, may do "
        "this: ask them, or file a change of your own."
    )
    page.get_by_role("link", name="Back to the dashboard").click()
    expect(page).to_have_url(re.compile(r"/$"))
