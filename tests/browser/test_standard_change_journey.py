"""Issue 18 in Chromium, the fast track that trust earns: a requester with a clean record files
the monthly retraining under its approved standard change template; her peer reviews it, no team
signs, the CAB agenda shows it as a standard change, and the pipeline deploys it after its soak."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from registry import services as registry
from registry.builders import AUTHORS, Commit, build_register, repository_with_mirror
from releases.builders import Clock, deploy, file_change, sign
from releases.models import ChangeRequest, SignOffKind
from releases.services import policy
from releases.services.standard_changes import standard_template_file
from releases.states import State
from tests.conftest import TRANSACTIONAL_APPS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS),
]

PIPELINE = "https://ci.example/retrain/"
REPOSITORY = "https://git.example.com/data-science/churn"


@pytest.fixture
def sign_in(page, sign_in):
    def as_user(user):
        page.context.clear_cookies()
        return sign_in(user)

    return as_user


def _commit(subject: str, path: str, hour: int) -> Commit:
    return Commit(
        author=AUTHORS[0],
        message=subject,
        when=datetime(2026, 11, 2, hour, tzinfo=UTC),
        path=path,
        content=f"{subject}\n",
    )


@pytest.fixture
def retraining(envs, tmp_path, requester, peer, prod_signers, ci):
    """prod (production) allows standard changes; churn-score's retraining template (new data
    only) was approved by prod's three teams; build 1.1, new data on the same code, has been
    live in test for eight days."""
    prod = envs["prod"]
    policy.environment_update(
        actor=None, environment=prod, rank=prod.rank, description="", is_production=True
    )
    current = prod.policies.order_by("-version").first()
    policy.environment_policy_change(
        actor=None,
        environment=prod,
        approval_teams=list(current.approval_teams.all()),
        soak_source=envs["test"],
        soak_days=7,
        standard_changes_allowed=True,
    )
    shas = repository_with_mirror(
        tmp_path / "churn",
        [_commit("Model code", "src/model.py", 9), _commit("November data", "data/11.csv", 10)],
        url=REPOSITORY,
    )
    registry.model_register(actor=None, name="churn-score", owner_team="data-science", risk_tier=3)
    builds = {
        number: build_register(
            "churn-score",
            number,
            repository=REPOSITORY,
            commit_sha=sha,
            build_url=f"{PIPELINE}{number}",
        )
        for number, sha in zip(["1.0", "1.1"], shas, strict=True)
    }
    now = timezone.now()
    approval = standard_template_file(
        actor=requester,
        base_version=builds["1.0"],
        environments=[envs["test"], prod],
        pipeline=PIPELINE,
        allowed_paths="data/**",
        valid_until=now + timedelta(days=90),
        max_uses=12,
        title="Monthly retraining of churn-score",
        justification="Same code, the month's data.",
        rollback_plan="Roll back to the previous version.",
    )
    for signer in prod_signers:
        sign(signer, approval)
    clock = Clock(now - timedelta(days=8))
    in_test = file_change(
        requester=requester,
        model_version=builds["1.1"],
        environment=envs["test"],
        signers=[peer],
        window_start=clock.now,
        now=clock.now,
    )
    deploy(
        actor=ci.account,
        environment=envs["test"],
        model_version=builds["1.1"],
        change_request=in_test,
        clock=clock,
    )
    return {"template": approval.standard_template, "build": builds["1.1"]}


def test_a_clean_record_earns_the_fast_track(
    page, sign_in, retraining, requester, peer, release_approver, password, ci
):
    template = retraining["template"]
    sign_in(requester)
    page.goto("/releases/change-requests/")
    page.get_by_role("link", name="Standard change templates").click()
    page.get_by_role("link", name=template.number).click()
    expect(page.get_by_test_id("template-status")).to_have_text("Approved")
    page.get_by_role("link", name="File a standard change").click()
    page.get_by_label("Model and version").select_option(value=str(retraining["build"].pk))
    page.get_by_label("Environment").select_option(label="prod")
    page.get_by_label("Title").fill("Retrain churn-score on November")
    page.get_by_label("Justification").fill("The month's data, the same code.")
    page.get_by_label("Rollback plan").fill("Roll back to 1.0.")
    start = timezone.localtime()
    page.get_by_label("Window starts").fill(start.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Window ends").fill((start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="File for review").click()

    expect(page.locator(".messages")).to_contain_text(f"filed under {template.number}")
    number = page.locator("h1").inner_text().split()[0]
    expect(page.get_by_test_id("risk-level").first).to_contain_text("Low risk")
    expect(page.get_by_test_id("risk-factors")).to_contain_text("Track record of Data Science")
    expect(page.get_by_test_id("standard-template")).to_contain_text(
        "touch only the template's paths"
    )

    # Her peer reviews it; nothing else is asked.
    sign_in(peer)
    page.goto(f"/releases/change-requests/{number}/")
    page.get_by_role("link", name="Review and sign").click()
    page.fill("#id_password", password)
    page.get_by_role("button", name="Sign", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("Signed:")
    expect(page.locator("h1 + p .badge").first).to_have_text("Approved")
    change = ChangeRequest.objects.get(pk=int(number.removeprefix("CR-")))
    assert [s.kind for s in change.sign_offs.all()] == [SignOffKind.PEER_REVIEW]

    # The CAB sees it on its agenda, marked as a standard change, ready.
    sign_in(release_approver)
    page.goto("/releases/cab/")
    item = page.locator("tr.cab-item").filter(has_text=number)
    expect(item.get_by_test_id("standard-change")).to_contain_text(
        f"Standard change under {template.number}"
    )
    expect(item).to_contain_text("Low risk")
    expect(item).to_contain_text("soak holds")
    expect(item).to_contain_text("the gate would let it through")

    # The pipeline deploys it in its window: no team signed, the soak held.
    pipeline = ci.client()
    asked = {"environment": "prod", "model": "churn-score", "version": "1.1"}
    started = pipeline.post(
        "/api/v1/deployments/", {**asked, "change_request": number}, format="json"
    )
    assert started.status_code == 201, started.json()
    finished = pipeline.post(
        f"/api/v1/deployments/{started.json()['id']}/result/",
        {"status": "succeeded"},
        format="json",
    )
    assert finished.status_code == 200, finished.json()
    change.refresh_from_db()
    assert change.state == State.DEPLOYED

    page.goto(f"/releases/standard-templates/{template.pk}/")
    expect(page.get_by_test_id("template-uses")).to_have_text("1 of at most 12")
    expect(page.get_by_test_id("template-instances")).to_contain_text(number)
