"""GitLab's protected environments make Gatehouse the required approver: a deployment GitLab holds
for approval (its `blocked` deployment event, kept as a fixture in GitLab's documented shape) is
approved or rejected through the real python-gitlab client against the GitLab stand-in, whether
or not the pipeline ever called the gate."""

import copy
import json
import logging
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEvent
from registry import tasks
from registry.builders import build_register
from releases.builders import file_change
from releases.models import Deployment, GateDecision, GatePurpose
from tests.registry.test_gitlab import GREEN

pytestmark = pytest.mark.django_db
# The GitLab stand-in and its linked repository come from the registry's GitLab tests.
pytest_plugins = ["tests.registry.test_gitlab"]

EVENT = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "gitlab_deployment_blocked.json").read_text()
)
DEPLOYMENT_ID = EVENT["deployment_id"]
URL = "/api/v1/platforms/gitlab/deployments/"
TOKEN = "gitlab-webhook-secret-1c5f"


@pytest.fixture
def hold(gitlab_server):
    """GitLab holds a deployment of `commit_sha` to `environment` for approval."""

    def held(commit_sha: str = GREEN, environment: str = "test", status: str = "blocked"):
        gitlab_server.deployments[DEPLOYMENT_ID] = {
            "id": DEPLOYMENT_ID,
            "iid": 7,
            "ref": "main",
            "sha": commit_sha,
            "status": status,
            "environment": {"id": 3, "name": environment},
            "approvals": [],
        }
        return gitlab_server.deployments[DEPLOYMENT_ID]

    return held


@pytest.fixture
def deliver(settings, repository):
    """GitLab sends its deployment event, with the configured secret token unless told."""
    settings.GITLAB_WEBHOOK_TOKEN = TOKEN

    def send(event: dict | None = None, token: str | None = TOKEN, **changes):
        body = {**copy.deepcopy(EVENT if event is None else event), **changes}
        headers = {} if token is None else {"HTTP_X_GITLAB_TOKEN": token}
        return APIClient().post(URL, body, format="json", **headers)

    return send


@pytest.fixture
def green_build(repository, gitlab_server):
    """CI registered a build of the commit whose GitLab pipeline is green (and GitLab's calls
    are counted from here)."""
    tasks.refresh_pipeline_status(repository.pk, GREEN)
    gitlab_server.calls.clear()
    return build_register("fraud-score", "2.0", commit_sha=GREEN, repository=repository.url)


def approvals(gitlab_server) -> list[tuple[str, str]]:
    return [
        (body["status"], body["comment"])
        for method, path, _, body, _ in gitlab_server.calls
        if method == "POST" and path.endswith(f"/deployments/{DEPLOYMENT_ID}/approval")
    ]


def test_a_blocked_deployment_of_an_unapproved_build_is_rejected_with_the_reasons(
    envs, green_build, hold, deliver, gitlab_server
):
    hold(environment="test")
    response = deliver()
    assert response.status_code == 200, response.content
    assert response.json()["outcome"] == "rejected"
    [(status, comment)] = approvals(gitlab_server)
    assert status == "rejected"
    assert "Gatehouse rejects this deployment to test" in comment
    assert f"- {green_build}: no_approved_change: test needs an approved change" in comment
    decision = GateDecision.objects.get()
    assert decision.purpose == GatePurpose.GITLAB_APPROVAL
    assert not decision.allowed and decision.model_version == green_build
    assert [reason["code"] for reason in decision.reasons] == ["no_approved_change"]
    assert decision.question["gitlab_deployment_id"] == DEPLOYMENT_ID
    assert decision.question["commit_sha"] == GREEN
    assert f"#{decision.pk}" in comment
    event = AuditEvent.objects.filter(action="gate.checked").latest("seq")
    assert event.data["purpose"] == "gitlab_approval"
    assert event.data["gate_decision"] == decision.pk and event.data["allowed"] is False


def test_a_blocked_deployment_of_an_approved_build_is_approved(
    envs, green_build, hold, deliver, gitlab_server, requester, peer, clock
):
    change = file_change(
        model_version=green_build,
        environment=envs["test"],
        requester=requester,
        signers=[peer],
        window_start=clock.now,
    )
    hold(environment="test")
    response = deliver()
    assert response.json()["outcome"] == "approved"
    [(status, comment)] = approvals(gitlab_server)
    assert status == "approved"
    assert f"Gatehouse approves {green_build} under {change.number} for test" in comment
    decision = GateDecision.objects.get(purpose=GatePurpose.GITLAB_APPROVAL)
    assert decision.allowed and decision.change_request == change


def test_a_deployment_that_skips_the_pipelines_gate_call_is_still_stopped(
    envs, green_build, hold, deliver, gitlab_server
):
    """The pipeline registered its build and went straight to its deploy job, never asking the
    gate. GitLab holds the job in the protected environment, asks Gatehouse, and is told no."""
    hold(environment="prod")
    deliver(environment="prod")
    assert not GateDecision.objects.filter(
        purpose__in=[GatePurpose.CHECK, GatePurpose.DEPLOYMENT]
    ).exists()
    assert not Deployment.objects.exists()
    [(status, comment)] = approvals(gitlab_server)
    assert status == "rejected"
    assert "no_approved_change" in comment and "soak_not_met" in comment


def test_the_commit_and_environment_are_gitlabs_not_the_webhook_bodys(
    envs, green_build, hold, deliver, gitlab_server, requester, peer, clock
):
    """A body that claims another environment changes nothing: GitLab's record decides."""
    file_change(
        model_version=green_build,
        environment=envs["test"],
        requester=requester,
        signers=[peer],
        window_start=clock.now,
    )
    hold(environment="prod")
    deliver(environment="test")
    [(status, _)] = approvals(gitlab_server)
    assert status == "rejected"
    assert GateDecision.objects.get().environment == envs["prod"]


def test_a_commit_without_a_registered_build_is_rejected(
    envs, repository, hold, deliver, gitlab_server
):
    hold(commit_sha="b" * 40)
    deliver()
    [(status, comment)] = approvals(gitlab_server)
    assert status == "rejected"
    assert "unregistered_commit: No build of commit bbbbbbbbbb" in comment
    decision = GateDecision.objects.get()
    assert decision.purpose == GatePurpose.GITLAB_APPROVAL and not decision.allowed
    assert decision.environment == envs["test"] and decision.model is None


def test_a_platform_environment_may_name_one_model(
    envs, green_build, hold, deliver, gitlab_server, requester, peer, clock
):
    """Two models built from one commit: `test` judges both, `test/fraud-score` only that one."""
    build_register("credit-scoring", "1.0", commit_sha=GREEN, repository=green_build.repository.url)
    file_change(
        model_version=green_build,
        environment=envs["test"],
        requester=requester,
        signers=[peer],
        window_start=clock.now,
    )
    hold(environment="test")
    deliver()
    hold(environment="test/fraud-score")
    deliver()
    assert [status for status, _ in approvals(gitlab_server)] == ["rejected", "approved"]
    assert "credit-scoring 1.0: no_approved_change" in approvals(gitlab_server)[0][1]


@pytest.mark.parametrize("token", ["wrong-token", "", None])
def test_a_wrong_token_is_refused_and_nothing_is_called(
    envs, green_build, hold, deliver, gitlab_server, token
):
    hold()
    response = deliver(token=token)
    assert response.status_code == 403
    assert response.json()["code"] == "webhook_not_authentic"
    assert gitlab_server.calls == []
    assert not GateDecision.objects.exists()


def test_without_a_configured_token_every_delivery_is_refused(
    envs, green_build, hold, deliver, gitlab_server, settings
):
    hold()
    settings.GITLAB_WEBHOOK_TOKEN = ""
    assert deliver(token="").status_code == 403
    assert gitlab_server.calls == []


def test_an_unknown_project_is_ignored_and_logged(
    envs, green_build, hold, deliver, gitlab_server, caplog
):
    hold()
    event = copy.deepcopy(EVENT)
    event["project"]["id"] = 4711
    with caplog.at_level(logging.WARNING, logger="releases.api.platforms"):
        response = deliver(event)
    assert response.status_code == 202
    assert response.json()["outcome"] == "ignored"
    assert "GitLab project 4711 is not linked" in caplog.text
    assert gitlab_server.calls == []
    assert not GateDecision.objects.exists()


@pytest.mark.parametrize("status", ["running", "success", "failed", "canceled"])
def test_events_of_deployments_not_held_are_ignored(
    envs, green_build, hold, deliver, gitlab_server, status
):
    hold()
    assert deliver(status=status).status_code == 202
    assert gitlab_server.calls == []


def test_a_deployment_no_longer_blocked_in_gitlab_is_left_alone(
    envs, green_build, hold, deliver, gitlab_server
):
    hold(status="running")
    assert deliver().status_code == 202
    assert approvals(gitlab_server) == []
    assert not GateDecision.objects.exists()


def test_a_deployment_gitlab_does_not_know_is_a_bad_gateway(
    envs, green_build, deliver, gitlab_server
):
    response = deliver()
    assert response.status_code == 502
    assert response.json()["code"] == "platform_unreachable"
    assert approvals(gitlab_server) == []


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[1, 2]",
        json.dumps({**EVENT, "deployment_id": "twelve"}),
        json.dumps({**EVENT, "project": None}),
        json.dumps({key: value for key, value in EVENT.items() if key != "environment"}),
        json.dumps({**EVENT, "project": {"id": -1}}),
    ],
)
def test_a_malformed_payload_is_400_not_500(envs, green_build, deliver, gitlab_server, body):
    response = APIClient().generic(
        "POST", URL, body, content_type="application/json", HTTP_X_GITLAB_TOKEN=TOKEN
    )
    assert response.status_code == 400
    assert gitlab_server.calls == []
