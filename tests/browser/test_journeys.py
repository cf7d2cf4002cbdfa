"""The five journeys of issue 8 in Chromium. History before the journey is written through the
services at past moments (`now=`); the journey's own steps go through the pages, and the CD
pipeline's through the REST API with its token."""

import csv
import re
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from audit.services import auditor_add
from organisation.demo import DEMO_PASSWORD
from registry.builders import build_register
from registry.models import ModelVersion
from releases.builders import sign
from releases.models import ChangeRequest, Deployment, Environment, SignOff
from releases.selectors.change_requests import change_request_get
from releases.services import change_requests
from releases.services.deployments import (
    deployment_record_result,
    deployment_start,
    health_check_record,
)
from releases.states import Kind, State
from tests.browser.screenshots import snap
from tests.conftest import TRANSACTIONAL_APPS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS),
]

WINDOW = "%Y-%m-%dT%H:%M"


@pytest.fixture
def sign_in(page, sign_in):
    """Sign out whoever is signed in, then sign `user` in and wait for their dashboard."""

    def as_user(user):
        page.context.clear_cookies()
        sign_in(user)
        expect(page.get_by_role("heading", level=1)).to_contain_text(user.first_name)
        return page

    return as_user


@pytest.fixture
def auditor(auditor):
    """The auditor persona in the Auditors group, as the demo puts them."""
    auditor_add(actor=None, user=auditor)
    return auditor


def past_change(
    *, build: ModelVersion, environment: Environment, requester, signers: list, at: datetime
) -> ChangeRequest:
    """A change filed at `at`, its window open from then for a day, signed in order an hour on."""
    change = change_requests.change_request_file(
        actor=requester,
        model_version=build,
        environment=environment,
        title=f"{build.model.name} {build.version} to {environment.name}",
        justification="Better recall on card-not-present fraud.",
        rollback_plan="Roll back to the previous version.",
        window_start=at,
        window_end=at + timedelta(days=1),
        now=at,
    )
    for index, signer in enumerate(signers):
        sign(signer, change, now=at + timedelta(minutes=10 + index))
    change.refresh_from_db()
    return change


def past_deploy(*, ci, build, environment, change=None, at: datetime) -> Deployment:
    deployment, _ = deployment_start(
        actor=ci.account,
        environment=environment,
        model_version=build,
        change_request=change,
        now=at,
    )
    return deployment_record_result(
        actor=ci.account, deployment=deployment, status="succeeded", now=at + timedelta(minutes=5)
    )


def in_test(*, ci, build, envs, requester, peer, days_ago: float) -> Deployment:
    """The build deployed successfully to test `days_ago` days ago, under its peer-reviewed
    change (the soak evidence for prod)."""
    at = timezone.now() - timedelta(days=days_ago)
    change = past_change(
        build=build, environment=envs["test"], requester=requester, signers=[peer], at=at
    )
    return past_deploy(
        ci=ci, build=build, environment=envs["test"], change=change, at=at + timedelta(hours=1)
    )


def sign_from_waiting(page: Page, sign_in, user, number: str, meaning: str, shot: str = ""):
    """The signer finds the change under Waiting for me and signs it with their password."""
    sign_in(user)
    page.get_by_role("link", name="Waiting for me").first.click()
    row = page.get_by_role("row").filter(has_text=number)
    row.get_by_role("link", name="Review and sign").click()
    expect(page.locator(".meanings")).to_contain_text(meaning)
    if shot:
        snap(page, shot)
    page.fill("#id_password", DEMO_PASSWORD)
    page.get_by_role("button", name="Sign", exact=True).click()
    expect(page.locator(".messages")).to_contain_text(f"Signed: “{meaning}")


def file_in_browser(page: Page, *, build: ModelVersion, environment: str, title: str) -> str:
    """The requester fills the filing form (window open from this minute for a day) and files;
    returns the new change's number."""
    page.goto("/releases/change-requests/new/")
    page.get_by_label("Model and version").select_option(value=str(build.pk))
    page.get_by_label("Environment").select_option(label=environment)
    page.get_by_label("Title").fill(title)
    page.get_by_label("Justification").fill("Recall +4 points on the October backtest.")
    page.get_by_label("Risk and impact").fill("Scores shift for 2% of transactions.")
    page.get_by_label("Test evidence").fill("Backtest report attached to the build.")
    page.get_by_label("Rollback plan").fill("Roll back to the previous version in the portal.")
    start = timezone.localtime().replace(second=0, microsecond=0)
    page.get_by_label("Window starts").fill(start.strftime(WINDOW))
    page.get_by_label("Window ends").fill((start + timedelta(days=1)).strftime(WINDOW))
    page.get_by_role("button", name="File for review").click()
    expect(page.locator(".messages")).to_contain_text("filed")
    return page.url.rstrip("/").rsplit("/", 1)[-1]


def test_production_change_from_filing_to_the_auditors_csv(
    page,
    sign_in,
    envs,
    fraud,
    ci,
    requester,
    peer,
    model_risk_approver,
    release_approver,
    platform_approver,
    auditor,
    tmp_path,
):
    build = build_register(fraud.name, "2.0")
    in_test(ci=ci, build=build, envs=envs, requester=requester, peer=peer, days_ago=8)

    sign_in(requester)
    number = file_in_browser(page, build=build, environment="prod", title="Fraud score 2.0 live")
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"{number} · Fraud score 2.0")
    expect(page.locator("h1 + p .badge").first).to_have_text("In peer review")
    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_label("My change requests")).to_contain_text("Waiting for a peer review")
    snap(page, "dashboard-requester")

    sign_from_waiting(
        page,
        sign_in,
        peer,
        number,
        f"I approve {number} for prod as peer reviewer for Data Science",
    )
    for signer, team in [
        (model_risk_approver, "Model Risk"),
        (release_approver, "Release Management"),
        (platform_approver, "Platform Operations"),
    ]:
        if signer == model_risk_approver:
            sign_in(signer)
            snap(page, "dashboard-approver")
            page.get_by_role("link", name="Waiting for me").first.click()
            snap(page, "waiting-for-me")
        sign_from_waiting(
            page,
            sign_in,
            signer,
            number,
            f"I approve {number} for prod on behalf of {team}",
            shot="sign-form" if signer == release_approver else "",
        )
    expect(page.locator("h1 + p .badge").first).to_have_text("Approved")
    expect(page.get_by_label("Deployment gate")).to_contain_text("The gate would let")
    snap(page, "change-request")

    pipeline = ci.client()
    started = pipeline.post(
        "/api/v1/deployments/",
        {"environment": "prod", "model": "fraud-score", "version": "2.0", "change_request": number},
        format="json",
    )
    assert started.status_code == 201, started.json()
    finished = pipeline.post(
        f"/api/v1/deployments/{started.json()['id']}/result/",
        {"status": "succeeded"},
        format="json",
    )
    assert finished.status_code == 200, finished.json()

    page.goto("/releases/environments/prod/")
    row = page.get_by_label("Live models").get_by_role("row").filter(has_text="fraud-score")
    expect(row).to_contain_text("2.0")
    expect(row).to_contain_text(ci.account.name)
    expect(row).to_contain_text(number)
    for name in ["Per Eriksen", "Rita Kovacs", "Rel Martins", "Pat Okafor"]:
        expect(row).to_contain_text(name)
    snap(page, "environment-prod")
    page.get_by_role("link", name="Metrics").first.click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    snap(page, "metrics")
    page.goto("/registry/models/fraud-score/")
    expect(page.get_by_role("main")).to_contain_text("2.0")
    snap(page, "registry-model")

    sign_in(auditor)
    page.goto("/audit/")
    change = change_request_get(number=number)
    page.get_by_label("Object type").fill("releases.changerequest")
    page.get_by_label("Object id").fill(str(change.pk))
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody")).to_contain_text("change_request.signed")
    snap(page, "audit-trail")
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV", exact=True).click()
    saved = tmp_path / "change.csv"
    download.value.save_as(saved)
    rows = list(csv.DictReader(saved.open(encoding="utf-8")))
    assert all(number in row["object_repr"] for row in rows)
    assert sum(row["action"] == "change_request.signed" for row in rows) == 4


def test_a_build_that_has_not_soaked_shows_its_earliest_date_and_soak_not_met(
    page, sign_in, envs, fraud, ci, requester, peer
):
    build = build_register(fraud.name, "2.1")
    ran = in_test(ci=ci, build=build, envs=envs, requester=requester, peer=peer, days_ago=2)
    earliest = timezone.localtime(ran.succeeded_at + timedelta(days=7)).strftime("%Y-%m-%d %H:%M")

    sign_in(requester)
    page.goto("/releases/change-requests/new/")
    page.get_by_label("Model and version").select_option(value=str(build.pk))
    page.get_by_label("Environment").select_option(label="prod")
    page.get_by_role("button", name="Show the commits").click()
    gate = page.get_by_label("Deployment gate")
    expect(gate.locator("dt", has_text="Earliest allowed")).to_be_visible()
    expect(gate).to_contain_text(earliest)
    expect(gate).to_contain_text("not yet")
    snap(page, "change-request-form")

    number = file_in_browser(page, build=build, environment="prod", title="Fraud score 2.1 early")
    gate = page.get_by_label("Deployment gate")
    expect(gate).to_contain_text("The gate would refuse")
    expect(gate.locator(".gate-reasons")).to_contain_text("soak_not_met")
    expect(gate).to_contain_text(earliest)

    answer = ci.client().post(
        "/api/v1/gate/",
        {"environment": "prod", "model": "fraud-score", "version": "2.1", "change_request": number},
        format="json",
    )
    assert "soak_not_met" in [reason["code"] for reason in answer.json()["reasons"]]


def test_a_failing_release_rolled_back_from_the_environment_page(
    page, sign_in, envs, fraud, ci, requester, peer
):
    before = build_register(fraud.name, "3.0")
    failing = build_register(fraud.name, "3.1")
    now = timezone.now()
    in_test(ci=ci, build=before, envs=envs, requester=requester, peer=peer, days_ago=3)
    change = past_change(
        build=failing,
        environment=envs["test"],
        requester=requester,
        signers=[peer],
        at=now - timedelta(hours=3),
    )
    bad = past_deploy(
        ci=ci, build=failing, environment=envs["test"], change=change, at=now - timedelta(hours=2)
    )
    health_check_record(
        deployment=bad, ok=False, status_code=500, detail="Scoring errors on every request."
    )
    moment_before = timezone.localtime(now - timedelta(hours=1)).strftime(WINDOW)

    sign_in(requester)
    page.goto("/releases/environments/test/")
    live = page.get_by_label("Live models")
    row = live.get_by_role("row").filter(has_text="fraud-score")
    expect(row).to_contain_text("3.1")
    expect(row).to_contain_text("down")
    # Ledger against runtime: no namespace observed here, so the page says so rather than
    # showing the model as not running.
    runtime = page.get_by_label("Ledger and runtime")
    expect(runtime).to_contain_text("No cluster namespace is observed for test")
    expect(runtime.get_by_role("row").filter(has_text="fraud-score")).to_contain_text("down")
    expect(runtime).not_to_contain_text("not running")
    snap(page, "environment-test")
    row.get_by_label("Reason").fill("Scoring errors on every request since 3.1.")
    row.get_by_role("button", name="Roll back").click()
    expect(page.locator(".messages")).to_contain_text("fraud-score is back on 3.0 in test")
    row = live.get_by_role("row").filter(has_text="fraud-score")
    expect(row).to_contain_text("3.0")
    expect(row).to_contain_text("rollback")

    page.get_by_label("What was live at").fill(moment_before)
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"\?at="))
    row = page.get_by_label("Live models").get_by_role("row").filter(has_text="fraud-score")
    expect(row).to_contain_text("3.1")
    expect(row).to_contain_text("later rolled back")
    snap(page, "environment-as-of")


def test_an_emergency_change_deployed_with_its_retrospective_overdue(
    page, sign_in, envs, fraud, ci, requester, change_manager, model_risk_approver
):
    build = build_register(fraud.name, "4.0")
    authorised_at = timezone.now() - timedelta(days=4)
    emergency = change_requests.change_request_file(
        actor=requester,
        kind=Kind.EMERGENCY,
        model_version=build,
        environment=envs["prod"],
        title="Fraud score 4.0: stop the false-positive storm",
        justification="Alerts tripled since the scheme change.",
        rollback_plan="Roll back to the previous version.",
        incident_ref="INC-2026-1142",
        now=authorised_at - timedelta(minutes=30),
    )
    sign(change_manager, emergency, now=authorised_at)
    past_deploy(
        ci=ci,
        build=build,
        environment=envs["prod"],
        change=emergency,
        at=authorised_at + timedelta(hours=1),
    )
    emergency.refresh_from_db()
    assert emergency.state == State.RETRO_REVIEW
    assert emergency.retrospective_due_at < timezone.now()

    sign_in(change_manager)
    page.get_by_role("link", name="Change requests").first.click()
    page.get_by_role("link", name="Emergency changes").click()
    row = page.get_by_role("row").filter(has_text=emergency.number)
    expect(row).to_contain_text("Overdue")
    expect(row).to_contain_text("Model Risk")
    snap(page, "emergencies")

    sign_from_waiting(
        page,
        sign_in,
        model_risk_approver,
        emergency.number,
        f"I reviewed emergency change {emergency.number} for prod after the fact and accept it "
        "on behalf of Model Risk",
    )
    retrospective = page.locator(".signoff-panel.signed", has_text="Retrospective (Model Risk)")
    expect(retrospective).to_contain_text("Rita Kovacs")

    page.goto("/releases/environments/prod/")
    row = (
        page.get_by_label("Emergency changes").get_by_role("row").filter(has_text=emergency.number)
    )
    expect(row).to_contain_text("overdue")
    expect(row).to_contain_text("Model Risk")
    live = page.get_by_label("Live models").get_by_role("row").filter(has_text="fraud-score")
    expect(live).to_contain_text("emergency")


def test_no_sign_button_on_ones_own_change_and_a_forged_post_is_refused(
    page, sign_in, envs, fraud, requester
):
    build = build_register(fraud.name, "5.0")
    start = timezone.now() + timedelta(days=2)
    change = change_requests.change_request_file(
        actor=requester,
        model_version=build,
        environment=envs["prod"],
        title="Fraud score 5.0",
        justification="Better recall.",
        rollback_plan="Roll back to the previous version.",
        window_start=start,
        window_end=start + timedelta(hours=4),
    )

    sign_in(requester)
    page.goto(f"/releases/change-requests/{change.number}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text(change.number)
    signing = re.compile(r"^(Sign\b(?! out)|Review and sign)")
    expect(page.get_by_role("link", name=signing)).to_have_count(0)
    expect(page.get_by_role("button", name=signing)).to_have_count(0)

    token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    forged = page.request.post(
        f"/releases/change-requests/{change.number}/sign/",
        form={
            "csrfmiddlewaretoken": token,
            "decision": "approve",
            "comment": "",
            "password": DEMO_PASSWORD,
            "content_digest": change.content_digest,
            "team": "data-science",
        },
    )
    assert forged.status == 403
    assert "own change" in forged.text().lower() or "your own" in forged.text().lower()
    assert not SignOff.objects.filter(change_request=change).exists()
    change.refresh_from_db()
    assert change.state == State.IN_REVIEW
