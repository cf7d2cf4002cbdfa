"""The gate, deployment, rollback and live endpoints, and the full release lifecycle through
them."""

from datetime import timedelta

import pytest
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from releases.builders import deploy, file_change, release_to_test, sign
from releases.models import ChangeRequest, Deployment, DeploymentStatus
from releases.states import State

pytestmark = pytest.mark.django_db


def person(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def prod_ready(envs, builds, ci, clock, requester, peer, prod_signers):
    """1.0 soaked in test for eight days and approved for prod, its window open now."""
    release_to_test(
        envs, builds["1.0"], ci.account, clock, requester, peer, pause=timedelta(days=8)
    )
    return file_change(
        model_version=builds["1.0"],
        environment=envs["prod"],
        requester=requester,
        signers=prod_signers,
        window_start=clock.now,
    )


def test_gate_answers_200_with_every_reason(envs, builds, ci):
    response = ci.client().post(
        "/api/v1/gate/", {"environment": "prod", "model": "fraud-score", "version": "1.0"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["allowed"] is False
    assert body["change_request"] is None
    assert [r["code"] for r in body["reasons"]] == ["no_approved_change", "soak_not_met"]
    assert all(r["message"] for r in body["reasons"])
    assert body["policy_version"] == 1
    assert body["soak"]["source"] == "test" and body["soak"]["earliest_allowed_at"] is None


def test_gate_allows_an_approved_soaked_build(prod_ready, django_clock, ci):
    response = ci.client().post(
        "/api/v1/gate/",
        {
            "environment": "prod",
            "model": "fraud-score",
            "artifact_sha256": prod_ready.model_version.artifact_sha256,
        },
        format="json",
    )
    body = response.json()
    assert body["allowed"] is True, body
    assert body["change_request"] == prod_ready.number
    assert body["soak"]["holds"] is True


def test_gate_needs_gate_read_and_a_build(envs, builds, service_caller):
    writer = service_caller("deployments:write").client()
    question = {"environment": "dev", "model": "fraud-score", "version": "1.0"}
    response = writer.post("/api/v1/gate/", question)
    assert response.status_code == 403
    reader = service_caller("gate:read").client()
    assert reader.post("/api/v1/gate/", question).status_code == 200
    response = reader.post("/api/v1/gate/", {"environment": "dev", "model": "fraud-score"})
    assert response.status_code == 400
    assert "version" in response.json()


def test_a_refused_start_is_403_with_the_reasons(envs, builds, ci):
    response = ci.client().post(
        "/api/v1/deployments/",
        {"environment": "prod", "model": "fraud-score", "version": "1.0"},
    )
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "gate_denied"
    assert body["detail"]
    assert [r["code"] for r in body["reasons"]] == ["no_approved_change", "soak_not_met"]
    assert not Deployment.objects.exists()


def test_start_and_report_in_dev(envs, builds, ci):
    client = ci.client()
    payload = {
        "environment": "dev",
        "model": "fraud-score",
        "version": "1.0",
        "pipeline_url": "https://ci.example.com/pipelines/1",
    }
    response = client.post("/api/v1/deployments/", payload)
    assert response.status_code == 201
    started = response.json()
    assert started["status"] == "started" and started["id"]
    assert started["artifact_sha256"] == builds["1.0"].artifact_sha256
    assert started["started_by"] == "ci-pipeline"
    retried = client.post("/api/v1/deployments/", payload)
    assert retried.status_code == 200 and retried.json()["id"] == started["id"]

    result = f"/api/v1/deployments/{started['id']}/result/"
    response = client.post(result, {"status": "succeeded"})
    assert response.status_code == 200
    assert response.json()["succeeded_at"]
    assert client.post(result, {"status": "succeeded"}).status_code == 200
    conflict = client.post(result, {"status": "failed"})
    assert conflict.status_code == 409 and conflict.json()["code"] == "deployment_finished"
    assert client.post(result, {"status": "rolled_back"}).status_code == 400
    assert (
        client.post("/api/v1/deployments/999999/result/", {"status": "failed"}).status_code == 404
    )


def test_deployments_need_the_scope_and_known_names(envs, builds, service_caller, ci):
    reader = service_caller("gate:read").client()
    payload = {"environment": "dev", "model": "fraud-score", "version": "1.0"}
    assert reader.post("/api/v1/deployments/", payload).status_code == 403
    response = ci.client().post(
        "/api/v1/deployments/",
        {"environment": "staging", "model": "nope", "version": "1.0", "change_request": "CR-x"},
    )
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "unknown_environment"
    for name in ("staging", "nope", "CR-x"):
        assert name in body["detail"]


def test_a_digest_that_is_not_the_versions_is_refused(envs, builds, ci):
    response = ci.client().post(
        "/api/v1/deployments/",
        {
            "environment": "dev",
            "model": "fraud-score",
            "version": "1.0",
            "artifact_sha256": builds["1.1"].artifact_sha256,
        },
    )
    assert response.status_code == 403
    assert [r["code"] for r in response.json()["reasons"]] == ["digest_mismatch"]


def test_rollback_endpoint(envs, builds, ci, clock, requester, auditor):
    for version in ("1.0", "1.1"):
        deploy(
            actor=ci.account, environment=envs["dev"], model_version=builds[version], clock=clock
        )
    url = "/api/v1/environments/dev/models/fraud-score/rollback/"
    assert ci.client().post(url, {}).status_code == 400
    denied = person(auditor).post(url, {"reason": "Because."})
    assert denied.status_code == 403 and denied.json()["code"] == "not_allowed_to_roll_back"
    response = ci.client().post(url, {"reason": "Canary errors."})
    assert response.status_code == 201
    body = response.json()
    assert body["kind"] == "rollback" and body["version"] == "1.0"
    assert body["reason"] == "Canary errors." and body["rollback_of"]
    again = ci.client().post(url, {"reason": "Again."})
    assert again.status_code == 409 and again.json()["code"] == "no_previous_version"
    missing = ci.client().post("/api/v1/environments/dev/models/nope/rollback/", {"reason": "x"})
    assert missing.status_code == 404


def test_live_needs_a_well_formed_moment(envs, ci):
    client = ci.client()
    assert client.get("/api/v1/environments/dev/live/").json() == {
        "environment": "dev",
        "at": None,
        "models": [],
    }
    assert client.get("/api/v1/environments/dev/live/", {"at": "yesterday"}).status_code == 400
    assert client.get("/api/v1/environments/nowhere/live/").status_code == 404


def live_versions(client, environment, at=None):
    query = {"at": at.isoformat()} if at else {}
    response = client.get(f"/api/v1/environments/{environment}/live/", query)
    assert response.status_code == 200
    return {row["model"]: row["version"] for row in response.json()["models"]}


def test_full_lifecycle(
    org,
    django_clock,
    ci,
    requester,
    peer,
    model_risk_approver,
    release_approver,
    platform_approver,
    envs,
):
    """Register a build, deploy to test, wait out the soak, file, review, three sign-offs, gate
    allows, deploy to prod, fail, roll back; what is live is right at each step, and `?at=`
    gives the same answers afterwards for each of those moments."""
    clock, pipeline = django_clock, ci.client()
    seen: list[tuple] = []

    def step(expected_test: dict, expected_prod: dict) -> None:
        assert live_versions(pipeline, "test") == expected_test
        assert live_versions(pipeline, "prod") == expected_prod
        seen.append((clock.now, expected_test, expected_prod))
        clock.advance(minutes=30)

    def register(version: str) -> None:
        response = pipeline.post(
            "/api/v1/models/fraud-score/versions/",
            {
                "version": version,
                "repository": "https://git.example.com/data-science/models",
                "commit_sha": f"{version.replace('.', '')}".ljust(40, "a"),
                "build_id": f"build-{version}",
                "artifact_uri": f"s3://models/fraud-score/{version}.tar.gz",
                "artifact_sha256": f"{version.replace('.', '')}".ljust(64, "b"),
            },
            format="json",
        )
        assert response.status_code == 201, response.json()

    def file(version: str, environment: str) -> str:
        response = person(requester).post(
            "/api/v1/change-requests/",
            {
                "model": "fraud-score",
                "version": version,
                "environment": environment,
                "title": f"fraud-score {version} to {environment}",
                "justification": "Better recall.",
                "rollback_plan": "Roll back to the previous version.",
                "window_start": clock.now.isoformat(),
                "window_end": (clock.now + timedelta(days=2)).isoformat(),
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
        return response.json()["number"]

    def change(number: str) -> ChangeRequest:
        return ChangeRequest.objects.get(pk=int(number.removeprefix("CR-")))

    def start(version: str, environment: str, number: str):
        return pipeline.post(
            "/api/v1/deployments/",
            {
                "environment": environment,
                "model": "fraud-score",
                "version": version,
                "change_request": number,
            },
        )

    def report(deployment_id: int, status: str) -> dict:
        response = pipeline.post(f"/api/v1/deployments/{deployment_id}/result/", {"status": status})
        assert response.status_code == 200
        return response.json()

    def gate(version: str) -> dict:
        response = pipeline.post(
            "/api/v1/gate/", {"environment": "prod", "model": "fraud-score", "version": version}
        )
        assert response.status_code == 200
        return response.json()

    def release(version: str, environment: str, signers: list) -> str:
        number = file(version, environment)
        for signer in signers:
            sign(signer, change(number))
        deployment = start(version, environment, number).json()
        clock.advance(minutes=5)
        report(deployment["id"], "succeeded")
        return number

    approvers = [model_risk_approver, release_approver, platform_approver]
    assert pipeline.post(
        "/api/v1/models/", {"name": "fraud-score", "owner_team": "data-science"}
    ).status_code in (200, 201)
    step({}, {})

    # What production runs before this story: 1.0, soaked in test.
    register("1.0")
    release("1.0", "test", [peer])
    step({"fraud-score": "1.0"}, {})
    clock.advance(days=8)
    baseline = release("1.0", "prod", [peer, *approvers])
    step({"fraud-score": "1.0"}, {"fraud-score": "1.0"})

    # The story: register 1.1, deploy it to test.
    register("1.1")
    step({"fraud-score": "1.0"}, {"fraud-score": "1.0"})
    release("1.1", "test", [peer])
    in_test_at = clock.now
    step({"fraud-score": "1.1"}, {"fraud-score": "1.0"})

    early = gate("1.1")
    assert [r["code"] for r in early["reasons"]] == ["no_approved_change", "soak_not_met"]
    assert parse_datetime(early["soak"]["earliest_allowed_at"]) == in_test_at + timedelta(days=7)

    # Wait out the soak, then file, review and the three sign-offs.
    clock.advance(days=7)
    number = file("1.1", "prod")
    assert change(number).state == State.IN_REVIEW
    sign(peer, change(number))
    assert change(number).state == State.IN_APPROVAL
    for approver in approvers:
        assert not gate("1.1")["allowed"]
        sign(approver, change(number))
    assert change(number).state == State.APPROVED
    answer = gate("1.1")
    assert answer["allowed"] is True and answer["change_request"] == number
    step({"fraud-score": "1.1"}, {"fraud-score": "1.0"})

    # Deploy to prod: it starts, then fails; nothing changes in what is live.
    response = start("1.1", "prod", number)
    assert response.status_code == 201
    attempt = response.json()
    step({"fraud-score": "1.1"}, {"fraud-score": "1.0"})
    report(attempt["id"], "failed")
    assert change(number).state == State.APPROVED
    step({"fraud-score": "1.1"}, {"fraud-score": "1.0"})

    # Roll back (the requester owns the change): 1.0 goes back, under its own change.
    response = person(requester).post(
        "/api/v1/environments/prod/models/fraud-score/rollback/",
        {"reason": "The new feature store client times out."},
    )
    assert response.status_code == 201
    rollback = response.json()
    assert rollback["version"] == "1.0" and rollback["rollback_of"] == attempt["id"]
    assert Deployment.objects.get(pk=attempt["id"]).status == DeploymentStatus.ROLLED_BACK
    live = pipeline.get("/api/v1/environments/prod/live/").json()["models"][0]
    assert live["kind"] == "rollback" and live["change_request"] == baseline
    assert {s["username"] for s in live["signers"]} == {"peer", "risk", "release", "platform"}
    assert live["deployed_by"] == "requester"
    step({"fraud-score": "1.1"}, {"fraud-score": "1.0"})

    # Afterwards, every past moment reads as it did then.
    for moment, expected_test, expected_prod in seen:
        assert live_versions(pipeline, "test", at=moment) == expected_test, moment
        assert live_versions(pipeline, "prod", at=moment) == expected_prod, moment


def test_odd_names_are_answered_not_crashed_on(envs, builds, ci):
    client = ci.client()
    response = client.post(
        "/api/v1/deployments/",
        {"environment": "dev", "model": "fraud-score", "version": "1.0", "change_request": "³"},
    )
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_change_request"
    answer = client.post(
        "/api/v1/gate/",
        {"environment": "dev", "model": "fraud-score", "version": "1.0", "change_request": "CR-³"},
    ).json()
    assert [r["code"] for r in answer["reasons"]] == ["unknown_change_request"]
    assert client.get("/api/v1/environments/d%00ev/live/").status_code == 404
    rollback = "/api/v1/environments/dev/models/fr%00aud/rollback/"
    assert client.post(rollback, {"reason": "x"}).status_code == 404
