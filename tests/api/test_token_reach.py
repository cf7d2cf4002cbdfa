"""Rule 15, least privilege for machines, through the REST API with bearer tokens: a token acts
only on the models of its own team and of the teams granted to it, and only in the environments
it is limited to. Asking the gate stays open to any `gate:read` token."""

import pytest
from rest_framework.test import APIClient

from organisation import services
from portal.models import Scope
from registry.builders import commit_id, digest
from registry.models import ModelVersion, RegisteredModel
from releases.builders import deploy, release_to_test
from releases.models import Deployment, DeploymentStatus
from tests.conftest import make_service_caller

pytestmark = pytest.mark.django_db

EVERY_SCOPE = list(Scope.values)
DEPLOYMENTS = "/api/v1/deployments/"
ROLLBACK = "/api/v1/environments/{environment}/models/fraud-score/rollback/"


def with_grants(caller, *, teams=(), environments=()):
    services.service_account_grants_set(
        actor=None, service_account=caller.account, teams=list(teams), environments=environments
    )
    return caller


@pytest.fixture
def ops(org):
    """A Platform Operations pipeline with every scope and no grants: fraud-score is not its."""
    return make_service_caller(org["platform-operations"], "ops-cd", EVERY_SCOPE)


@pytest.fixture
def shared(org):
    """A Platform Operations pipeline granted Data Science."""
    caller = make_service_caller(org["platform-operations"], "shared-cd", EVERY_SCOPE)
    return with_grants(caller, teams=[org["data-science"]])


@pytest.fixture
def dev_only(org):
    """A Data Science pipeline limited to dev."""
    caller = make_service_caller(org["data-science"], "dev-cd", EVERY_SCOPE)
    return with_grants(caller, environments=["dev"])


def build_payload(name: str) -> dict:
    return {
        "version": name,
        "repository": "https://gitlab.example.com/data-science/fraud",
        "commit_sha": commit_id(f"fraud {name}"),
        "build_id": f"build-{name}",
        "artifact_uri": f"s3://models/fraud-score/{name}.tar.gz",
        "artifact_sha256": digest(f"fraud {name}"),
        "datasets": [],
    }


def start(caller, environment: str, version: str = "1.0"):
    return caller.client().post(
        DEPLOYMENTS,
        {"environment": environment, "model": "fraud-score", "version": version},
        format="json",
    )


def assert_refused(response, code: str, *names: str):
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["code"] == code
    for name in names:
        assert name in body["detail"]


def live_twice_in(environment, envs, builds, clock, ci):
    for version in ("1.0", "1.1"):
        deploy(
            actor=ci.account,
            environment=envs[environment],
            model_version=builds[version],
            clock=clock,
        )


def test_an_existing_token_without_grants_still_works_for_its_own_team(envs, builds, ci, clock):
    assert list(ci.account.granted_teams.all()) == [] and ci.account.environments == []
    client = ci.client()
    registered = client.post(
        "/api/v1/models/fraud-score/versions/", build_payload("2.0"), format="json"
    )
    assert registered.status_code == 201
    started = start(ci, "dev", "2.0")
    assert started.status_code == 201
    result = client.post(f"{DEPLOYMENTS}{started.json()['id']}/result/", {"status": "succeeded"})
    assert result.status_code == 200
    deploy(actor=ci.account, environment=envs["dev"], model_version=builds["1.0"], clock=clock)
    back = client.post(ROLLBACK.format(environment="dev"), {"reason": "Canary errors."})
    assert back.status_code == 201 and back.json()["version"] == "2.0"


def test_another_teams_token_may_not_register_a_build_of_the_model(builds, ops):
    response = ops.client().post(
        "/api/v1/models/fraud-score/versions/", build_payload("2.0"), format="json"
    )
    assert_refused(response, "token_wrong_team", "Data Science")
    assert not ModelVersion.objects.filter(version="2.0").exists()


def test_a_token_registers_models_only_under_the_teams_it_acts_for(org, ops, shared):
    model = {"name": "churn", "owner_team": "data-science", "risk_tier": 2}
    assert_refused(
        ops.client().post("/api/v1/models/", model, format="json"),
        "token_wrong_team",
        "Data Science",
    )
    assert not RegisteredModel.objects.filter(name="churn").exists()
    assert shared.client().post("/api/v1/models/", model, format="json").status_code == 201
    own = {"name": "capacity", "owner_team": "platform-operations", "risk_tier": 3}
    assert ops.client().post("/api/v1/models/", own, format="json").status_code == 201


def test_another_teams_token_may_not_start_a_deployment(envs, builds, ops):
    assert_refused(start(ops, "dev"), "token_wrong_team", "Data Science", "fraud-score")
    assert not Deployment.objects.exists()


def test_another_teams_token_may_still_ask_the_gate(envs, builds, ops):
    question = {"environment": "dev", "model": "fraud-score", "version": "1.0"}
    response = ops.client().post("/api/v1/gate/", question, format="json")
    assert response.status_code == 200 and response.json()["allowed"] is True


def test_another_teams_token_may_not_roll_back(envs, builds, ci, ops, clock):
    live_twice_in("dev", envs, builds, clock, ci)
    response = ops.client().post(ROLLBACK.format(environment="dev"), {"reason": "Mine now."})
    assert_refused(response, "token_wrong_team", "Data Science")
    assert not Deployment.objects.filter(kind="rollback").exists()


def test_another_teams_token_may_not_report_the_result(envs, builds, ci, ops):
    started = start(ci, "dev").json()
    response = ops.client().post(f"{DEPLOYMENTS}{started['id']}/result/", {"status": "failed"})
    assert_refused(response, "token_wrong_team", "Platform Operations")
    assert Deployment.objects.get(pk=started["id"]).status == DeploymentStatus.STARTED


def test_a_granted_token_acts_for_the_granted_team(envs, builds, ci, shared, clock):
    client = shared.client()
    registered = client.post(
        "/api/v1/models/fraud-score/versions/", build_payload("2.0"), format="json"
    )
    assert registered.status_code == 201
    started = start(shared, "dev", "2.0")
    assert started.status_code == 201
    result = client.post(f"{DEPLOYMENTS}{started.json()['id']}/result/", {"status": "succeeded"})
    assert result.status_code == 200
    deploy(actor=ci.account, environment=envs["dev"], model_version=builds["1.0"], clock=clock)
    back = client.post(ROLLBACK.format(environment="dev"), {"reason": "Canary errors."})
    assert back.status_code == 201 and back.json()["started_by"] == "shared-cd"


def test_the_starter_or_a_token_of_the_starters_team_reports_the_result(
    org, envs, builds, ci, shared
):
    """A token granted the model's team acts on it, but a result is reported by the pipeline
    that started the deployment or one of the same team."""
    first = start(ci, "dev").json()
    assert_refused(
        shared.client().post(f"{DEPLOYMENTS}{first['id']}/result/", {"status": "failed"}),
        "token_wrong_team",
        "Data Science",
    )
    teammate = make_service_caller(org["data-science"], "ds-reporter", EVERY_SCOPE)
    response = teammate.client().post(f"{DEPLOYMENTS}{first['id']}/result/", {"status": "failed"})
    assert response.status_code == 200 and response.json()["status"] == "failed"


def test_a_token_limited_to_dev_deploys_there_and_nowhere_else(envs, builds, dev_only):
    assert start(dev_only, "dev").status_code == 201
    refused = start(dev_only, "test")
    assert_refused(refused, "token_wrong_environment", "test", "dev")
    # What the pipeline's owner does next (issue 19).
    assert refused.json()["detail"].endswith(
        "Use a token for test, or ask an administrator to extend this one's environments in "
        "Admin → Service accounts."
    )
    assert not Deployment.objects.filter(environment__name="test").exists()


def test_a_token_limited_to_dev_may_not_roll_back_in_test(
    envs, builds, ci, dev_only, clock, requester, peer
):
    live_twice_in("dev", envs, builds, clock, ci)
    for version in ("1.0", "1.1"):
        release_to_test(envs, builds[version], ci.account, clock, requester, peer)
    response = dev_only.client().post(ROLLBACK.format(environment="test"), {"reason": "Errors."})
    assert_refused(response, "token_wrong_environment", "test")
    allowed = dev_only.client().post(ROLLBACK.format(environment="dev"), {"reason": "Errors."})
    assert allowed.status_code == 201


def test_a_token_limited_to_dev_may_not_report_a_result_in_test(
    envs, builds, ci, dev_only, approved_for_test, django_clock
):
    change = approved_for_test("1.0")
    started = ci.client().post(
        DEPLOYMENTS,
        {
            "environment": "test",
            "model": "fraud-score",
            "version": "1.0",
            "change_request": change.number,
        },
        format="json",
    )
    assert started.status_code == 201, started.content
    url = f"{DEPLOYMENTS}{started.json()['id']}/result/"
    assert_refused(
        dev_only.client().post(url, {"status": "failed"}), "token_wrong_environment", "test"
    )
    assert ci.client().post(url, {"status": "succeeded"}).status_code == 200


def test_a_deployment_a_person_started_is_reported_by_a_token_of_their_team(
    org, envs, builds, requester, shared
):
    person = APIClient()
    person.force_login(requester)
    started = person.post(
        DEPLOYMENTS, {"environment": "dev", "model": "fraud-score", "version": "1.0"}
    )
    assert started.status_code == 201, started.content
    url = f"{DEPLOYMENTS}{started.json()['id']}/result/"
    assert_refused(shared.client().post(url, {"status": "failed"}), "token_wrong_team", "requester")
    teammate = make_service_caller(org["data-science"], "ds-reporter", EVERY_SCOPE)
    assert teammate.client().post(url, {"status": "succeeded"}).status_code == 200
