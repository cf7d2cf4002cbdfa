"""Retries are safe (issue 14, hole 6): a CD job that retries a timed-out rollback does not roll
prod back a second version. Every POST that CI retries takes an Idempotency-Key (same key and
body: the first answer again; another body: 422), and a rollback may name the version it rolls
back (`from_version`: 409 not_live once it is not live any more)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import IdempotentRequest
from portal.tasks import prune_idempotency_keys
from releases.builders import release_to_test
from releases.models import Deployment, DeploymentKind

pytestmark = pytest.mark.django_db

ROLLBACK = "/api/v1/environments/test/models/fraud-score/rollback/"


@pytest.fixture
def three_releases(envs, builds, ci, clock, requester, peer, django_clock):
    for version in ("1.0", "1.1", "1.2"):
        release_to_test(
            envs, builds[version], ci.account, clock, requester, peer, pause=timedelta(hours=1)
        )


def live_version(client) -> str:
    live = client.get("/api/v1/environments/test/live/").json()["models"]
    return next(row["version"] for row in live if row["model"] == "fraud-score")


def test_a_retried_rollback_with_its_key_goes_back_once(three_releases, ci):
    client = ci.client()
    headers = {"HTTP_IDEMPOTENCY_KEY": "rollback-run-77"}
    first = client.post(ROLLBACK, {"reason": "Drift."}, format="json", **headers)
    again = client.post(ROLLBACK, {"reason": "Drift."}, format="json", **headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert live_version(client) == "1.1"
    assert Deployment.objects.filter(kind=DeploymentKind.ROLLBACK).count() == 1

    other_body = client.post(ROLLBACK, {"reason": "Other."}, format="json", **headers)
    assert other_body.status_code == 422
    assert other_body.json()["code"] == "idempotency_key_reused"
    assert Deployment.objects.filter(kind=DeploymentKind.ROLLBACK).count() == 1


def test_a_rollback_naming_its_version_refuses_once_that_is_not_live(three_releases, ci):
    client = ci.client()
    body = {"reason": "Drift.", "from_version": "1.2"}
    assert client.post(ROLLBACK, body, format="json").status_code == 201
    retried = client.post(ROLLBACK, body, format="json")
    assert retried.status_code == 409 and retried.json()["code"] == "not_live"
    assert live_version(client) == "1.1"


def test_keys_belong_to_their_caller_and_must_be_printable(builds, ci, service_caller):
    url = "/api/v1/models/fraud-score/versions/"
    payload = {
        "version": "7.0",
        "repository": builds["1.0"].repository.url,
        "commit_sha": "7" * 40,
        "build_id": "pipeline-7",
        "artifact_uri": "s3://models/fraud-score/7.0.tar.gz",
        "artifact_sha256": "7" * 64,
        "datasets": [],
    }
    key = {"HTTP_IDEMPOTENCY_KEY": "build-7"}
    assert ci.client().post(url, payload, format="json", **key).status_code == 201
    other = service_caller("registry:write").client()
    assert other.post(url, payload, format="json", **key).status_code == 200  # its own key
    bad = ci.client().post(url, payload, format="json", HTTP_IDEMPOTENCY_KEY="bad key")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_idempotency_key"


def test_answers_are_forgotten_after_the_retention_and_not_before(three_releases, ci, settings):
    settings.GATEHOUSE_IDEMPOTENCY_DAYS = 30
    client = ci.client()
    client.post(ROLLBACK, {"reason": "Drift."}, format="json", HTTP_IDEMPOTENCY_KEY="old-run")
    client.post(ROLLBACK, {"reason": "Drift."}, format="json", HTTP_IDEMPOTENCY_KEY="new-run")
    IdempotentRequest.objects.filter(key="old-run").update(
        created_at=timezone.now() - timedelta(days=31)
    )

    assert prune_idempotency_keys() == 1
    assert list(IdempotentRequest.objects.values_list("key", flat=True)) == ["new-run"]
    again = client.post(
        ROLLBACK, {"reason": "Drift."}, format="json", HTTP_IDEMPOTENCY_KEY="new-run"
    )
    assert again["Idempotent-Replayed"] == "true"
