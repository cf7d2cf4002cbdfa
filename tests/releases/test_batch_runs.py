"""Issue 20: a batch job attests at its start which digest it runs. The live digest is allowed;
any other is refused and flags the live deployment as changed without authorisation (rule 14)."""

import pytest

from audit.actions import AuditAction
from audit.models import AuditEvent
from portal.exceptions import RuleDenied
from portal.models import Scope
from registry.builders import build_register
from releases.models import BatchRun, UnauthorisedChange
from releases.services.deployments import deployment_record_result, deployment_start
from releases.services.runs import batch_run_attest
from tests.conftest import make_service_caller

pytestmark = pytest.mark.django_db
URL = "/api/v1/runs/"


@pytest.fixture
def live(envs, ci):
    """fraud-score 1.0 live in dev; 1.1 registered, never deployed."""
    first = build_register("fraud-score", "1.0")
    build_register("fraud-score", "1.1")
    deployment, _ = deployment_start(actor=ci.account, environment=envs["dev"], model_version=first)
    return deployment_record_result(actor=ci.account, deployment=deployment, status="succeeded")


@pytest.fixture
def job(org):
    """The scoring job's own token: `runs:write` only."""
    return make_service_caller(org["data-science"], "yarn-scoring", [Scope.RUNS_WRITE])


def run(version_digest: str, **changes) -> dict:
    return {
        "environment": "dev",
        "model": "fraud-score",
        "artifact_sha256": version_digest,
        "job_id": "application_1733000000000_0042",
        "host": "worker-07.hadoop.bank.internal",
        **changes,
    }


def test_the_live_digest_is_allowed_and_recorded(live, job):
    response = job.client().post(URL, run(live.model_version.artifact_sha256), format="json")

    assert response.status_code == 201
    answer = response.json()
    assert (answer["allowed"], answer["code"], answer["live_version"]) == (True, None, "1.0")
    recorded = BatchRun.objects.get(pk=answer["id"])
    assert recorded.live_deployment == live
    assert recorded.reported_by_name == "yarn-scoring"
    event = AuditEvent.objects.filter(action=AuditAction.BATCH_RUN_ATTESTED).last()
    assert event.data["allowed"] is True
    assert not UnauthorisedChange.objects.exists()


def test_a_digest_that_is_not_live_is_refused_and_flagged(live, job):
    other = build_register("fraud-score", "1.1").artifact_sha256
    response = job.client().post(URL, run(other), format="json")

    assert response.status_code == 201
    answer = response.json()
    assert (answer["allowed"], answer["code"]) == (False, "digest_not_live")
    assert answer["live_sha256"] == live.model_version.artifact_sha256
    flag = UnauthorisedChange.objects.get()
    assert (flag.deployment, flag.reported_sha256) == (live, other)
    assert flag.batch_run_id == answer["id"] and flag.health_check is None
    detected = AuditEvent.objects.filter(
        action=AuditAction.DEPLOYMENT_UNAUTHORISED_CHANGE_DETECTED
    ).last()
    assert detected.data["job_id"] == "application_1733000000000_0042"

    # The same attestation again: the same answer, no second flag.
    again = job.client().post(URL, run(other), format="json")
    assert again.status_code == 200 and again.json()["id"] == answer["id"]
    # Another job with the same foreign digest is recorded; the open flag stays one.
    another = job.client().post(URL, run(other, job_id="application_2"), format="json")
    assert another.json()["allowed"] is False
    assert UnauthorisedChange.objects.count() == 1


def test_an_unregistered_digest_is_refused_too(live, job):
    response = job.client().post(URL, run("0" * 64), format="json")
    assert response.json()["code"] == "digest_not_live"
    assert UnauthorisedChange.objects.get().reported_sha256 == "0" * 64


def test_nothing_live_is_refused(live, job):
    response = job.client().post(
        URL, run(live.model_version.artifact_sha256, environment="test"), format="json"
    )
    assert (response.json()["allowed"], response.json()["code"]) == (False, "nothing_live")


def test_a_job_that_attests_another_digest_under_the_same_id_is_a_conflict(live, job):
    job.client().post(URL, run(live.model_version.artifact_sha256), format="json")
    switched = job.client().post(URL, run("1" * 64), format="json")
    assert switched.status_code == 409
    assert switched.json()["code"] == "run_conflict"


def test_a_token_without_runs_write_is_refused(live, org):
    registrar = make_service_caller(org["data-science"], "ci-register", [Scope.REGISTRY_WRITE])
    response = registrar.client().post(URL, run(live.model_version.artifact_sha256), format="json")
    assert response.status_code == 403
    assert not BatchRun.objects.exists()


def test_a_token_of_another_team_is_refused(live, org):
    outsider = make_service_caller(org["model-risk"], "risk-jobs", [Scope.RUNS_WRITE])
    response = outsider.client().post(URL, run("1" * 64), format="json")
    assert response.status_code == 403
    assert not UnauthorisedChange.objects.exists()


def test_a_person_outside_the_owner_team_is_refused(live, auditor):
    with pytest.raises(RuleDenied):
        batch_run_attest(actor=auditor, **run(live.model_version.artifact_sha256))


def test_unknown_names_are_404_and_malformed_digests_400(live, job):
    unknown = job.client().post(URL, run("1" * 64, environment="nope"), format="json")
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "unknown_environment"
    assert unknown.json()["detail"].startswith("No environment is named 'nope'.")
    assert "GET /api/v1/environments/ lists them" in unknown.json()["detail"]
    bad = job.client().post(URL, run("ABC", extra="x"), format="json")
    assert bad.status_code == 400
    assert set(bad.json()) == {"artifact_sha256", "extra"}
