"""Issue 19 in Chromium, from the user's side: a commit prefix typed into the top bar answers
where that build is live and under which change request; the environment page says who put each
model there (requester, pipeline with its run, signers), now and at a past moment."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from registry.builders import build_register
from releases.services.deployments import deployment_record_result, deployment_start
from tests.browser.screenshots import snap
from tests.browser.test_journeys import WINDOW, past_change
from tests.conftest import TRANSACTIONAL_APPS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS),
]


def released(*, ci, build, envs, requester, peer, hours_ago: float):
    """`build` filed by `requester`, signed by `peer`, deployed to test by the pipeline."""
    at = timezone.now() - timedelta(hours=hours_ago)
    change = past_change(
        build=build, environment=envs["test"], requester=requester, signers=[peer], at=at
    )
    deployment, _ = deployment_start(
        actor=ci.account,
        environment=envs["test"],
        model_version=build,
        change_request=change,
        pipeline_url=f"https://ci.example.com/fraud/-/pipelines/{build.pk}",
        now=at + timedelta(minutes=30),
    )
    deployment_record_result(
        actor=ci.account,
        deployment=deployment,
        status="succeeded",
        now=at + timedelta(minutes=35),
    )
    return change


def test_a_commit_prefix_in_the_top_bar_says_where_it_is_live(
    page, sign_in, envs, fraud, ci, requester, peer, auditor
):
    build = build_register(fraud.name, "4.2")
    change = released(ci=ci, build=build, envs=envs, requester=requester, peer=peer, hours_ago=5)

    sign_in(auditor)
    page.get_by_role("searchbox", name="Search").fill(build.commit_sha[:7])
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/releases/search/\?q={build.commit_sha[:7]}"))
    commits = page.get_by_label("Commits")
    expect(commits).to_contain_text("fraud-score")
    row = commits.get_by_label("Where it is live").get_by_role("row").filter(has_text="test")
    expect(row).to_contain_text("4.2")
    expect(row).to_contain_text(change.number)
    expect(row).to_contain_text(requester.get_full_name())
    expect(row.get_by_role("link", name="pipeline run")).to_have_attribute(
        "href", f"https://ci.example.com/fraud/-/pipelines/{build.pk}"
    )
    snap(page, "search-commit")

    page.get_by_role("searchbox", name="Search").fill(build.commit_sha[:6])
    page.keyboard.press("Enter")
    expect(page.locator(".message.info")).to_contain_text("searched from 7")
    expect(page.get_by_label("Commits")).to_have_count(0)


def test_the_environment_page_says_who_put_each_model_there_now_and_then(
    page, sign_in, envs, fraud, ci, requester, peer, auditor
):
    first = build_register(fraud.name, "5.0")
    second = build_register(fraud.name, "5.1")
    old = released(ci=ci, build=first, envs=envs, requester=requester, peer=peer, hours_ago=6)
    new = released(ci=ci, build=second, envs=envs, requester=peer, peer=requester, hours_ago=2)

    sign_in(auditor)
    page.goto("/releases/environments/test/")
    row = page.get_by_label("Live models").get_by_role("row").filter(has_text="fraud-score")
    expect(row).to_contain_text(new.number)
    expect(row).to_contain_text(f"{peer.get_full_name()} ({peer.username})")
    expect(row).to_contain_text("pipeline ci-pipeline")
    expect(row).to_contain_text(f"{requester.get_full_name()} (Data Science")
    snap(page, "environment-who-put-it-there")

    moment = timezone.localtime(timezone.now() - timedelta(hours=4)).strftime(WINDOW)
    page.get_by_label("What was live at").fill(moment)
    page.get_by_role("button", name="Show").click()
    row = page.get_by_label("Live models").get_by_role("row").filter(has_text="fraud-score")
    expect(row).to_contain_text("5.0")
    expect(row).to_contain_text(old.number)
    expect(row).to_contain_text(f"{requester.get_full_name()} ({requester.username})")
    expect(row.get_by_role("link", name="pipeline run")).to_have_attribute(
        "href", f"https://ci.example.com/fraud/-/pipelines/{first.pk}"
    )
