"""The registry's REST contract: CI registers datasets, models and builds with a scoped token and
may retry; reads are open to any token and any signed-in person."""

import re

import pytest

from audit.models import AuditEvent
from portal.models import Scope
from registry.builders import commit_id, digest
from registry.models import DatasetVersion, ModelVersion, RegisteredModel
from tests.registry import helpers

pytestmark = pytest.mark.django_db


@pytest.fixture
def writer(service_caller):
    return service_caller(Scope.REGISTRY_WRITE).client()


@pytest.fixture
def registered(org):
    helpers.register_model()
    helpers.register_dataset()


# POST /api/v1/datasets/


def test_register_dataset_201_then_200(writer, org):
    first = writer.post("/api/v1/datasets/", helpers.dataset_payload(), format="json")
    assert first.status_code == 201
    body = first.json()
    assert body["id"] == DatasetVersion.objects.get().pk
    assert body["sha256"] == helpers.dataset_payload()["sha256"]
    again = writer.post("/api/v1/datasets/", helpers.dataset_payload(), format="json")
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    assert DatasetVersion.objects.count() == 1


def test_register_dataset_conflict_409(writer, org):
    writer.post("/api/v1/datasets/", helpers.dataset_payload(), format="json")
    response = writer.post(
        "/api/v1/datasets/", helpers.dataset_payload(uri="s3://elsewhere"), format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "dataset_version_conflict"


@pytest.mark.parametrize(
    ("field", "value"),
    [("sha256", "nothex"), ("schema_sha256", "1" * 10), ("rows", -5), ("name", None)],
)
def test_register_dataset_400_names_the_field(writer, org, field, value):
    payload = helpers.dataset_payload(**{field: value})
    response = writer.post("/api/v1/datasets/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert isinstance(response.json()[field], list)


def test_register_dataset_missing_fields_400(writer, org):
    response = writer.post("/api/v1/datasets/", {}, format="json")
    assert response.status_code == 400
    assert {"name", "version", "uri", "sha256"} <= set(response.json())


# GET/POST /api/v1/models/


def test_register_and_list_models(writer, org, login, requester):
    created = writer.post("/api/v1/models/", helpers.model_payload(), format="json")
    assert created.status_code == 201
    assert created.json()["owner_team"] == "data-science"
    assert writer.post("/api/v1/models/", helpers.model_payload(), format="json").status_code == 200
    helpers.register_model(name="fraud-detection", owner_team="model-risk", risk_tier=2)
    listed = login(requester).get("/api/v1/models/", {"owner_team": "model-risk"})
    assert listed.status_code == 200
    assert [m["name"] for m in listed.json()["results"]] == ["fraud-detection"]
    tier_one = writer.get("/api/v1/models/", {"risk_tier": 1}).json()["results"]
    assert [m["name"] for m in tier_one] == ["credit-scoring"]
    assert all("id" in m for m in listed.json()["results"])


def test_register_model_conflict_and_validation(writer, org):
    writer.post("/api/v1/models/", helpers.model_payload(), format="json")
    conflict = writer.post("/api/v1/models/", helpers.model_payload(risk_tier=3), format="json")
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "model_conflict"
    invalid = writer.post(
        "/api/v1/models/",
        helpers.model_payload(name="other", owner_team="no ghosts", risk_tier=9),
        format="json",
    )
    assert invalid.status_code == 400
    assert set(invalid.json()) == {"owner_team", "risk_tier"}
    unknown = writer.post(
        "/api/v1/models/", helpers.model_payload(name="other", owner_team="ghosts"), format="json"
    )
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "unknown_team"


# POST/GET /api/v1/models/{name}/versions/


def test_register_version_201_with_reproducibility_then_200(writer, registered):
    url = "/api/v1/models/credit-scoring/versions/"
    first = writer.post(url, helpers.version_payload(), format="json")
    assert first.status_code == 201
    body = first.json()
    assert body["id"] == ModelVersion.objects.get().pk
    assert body["reproducible"] is True
    assert body["missing"] == []
    assert body["datasets"][0]["name"] == "loans"
    assert body["repository"] == helpers.REPOSITORY_URL
    again = writer.post(url, helpers.version_payload(), format="json")
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    assert ModelVersion.objects.count() == 1
    assert AuditEvent.objects.filter(action="model_version.registered").count() == 1


def test_version_names_what_is_missing_for_reproducibility(writer, registered):
    response = writer.post(
        "/api/v1/models/credit-scoring/versions/",
        helpers.version_payload(datasets=[], env_lock_sha256="", build_url=""),
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["reproducible"] is False
    assert response.json()["missing"] == ["build", "data", "environment_lock"]


def test_register_version_conflict_409(writer, registered):
    url = "/api/v1/models/credit-scoring/versions/"
    writer.post(url, helpers.version_payload(), format="json")
    response = writer.post(url, helpers.version_payload(artifact_sha256=digest("x")), format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "model_version_conflict"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("commit_sha", "1234"),
        ("artifact_sha256", "Z" * 64),
        ("env_lock_sha256", "0"),
        ("build_url", "javascript:alert(1)"),
        ("repository", "just words"),
        ("datasets", [{"version": "2026-11-01"}]),
        ("metrics", "not an object"),
        ("metrics", {"auc\x00": 0.9}),
        ("params", {"depth": ["\x00"]}),
        ("params", {"seed": 2**53}),
        ("metrics", {"auc": [[0.9]]}),
        ("metrics", {"by_segment": {"retail": {"auc": 0.9}}}),
    ],
)
def test_register_version_400_names_the_field(writer, registered, field, value):
    response = writer.post(
        "/api/v1/models/credit-scoring/versions/",
        helpers.version_payload(**{field: value}),
        format="json",
    )
    assert response.status_code == 400
    assert field in response.json()
    assert ModelVersion.objects.count() == 0


def test_params_and_metrics_take_scalars_and_one_list_or_object_of_them(writer, registered):
    params = {"layers": [64, 32], "optimiser": {"lr": 0.1, "name": "adam"}, "seed": None}
    metrics = {"auc": 0.91, "rows": 2**53 - 1, "balanced": True}
    response = writer.post(
        "/api/v1/models/credit-scoring/versions/",
        helpers.version_payload(params=params, metrics=metrics),
        format="json",
    )
    assert response.status_code == 201
    version = ModelVersion.objects.get()
    assert (version.params, version.metrics) == (params, metrics)


def test_register_version_naming_an_unknown_dataset_is_404(writer, registered):
    response = writer.post(
        "/api/v1/models/credit-scoring/versions/",
        helpers.version_payload(datasets=[{"name": "loans", "version": "unknown"}]),
        format="json",
    )
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_dataset"
    assert ModelVersion.objects.count() == 0


def test_register_version_of_unknown_model_404(writer, registered):
    response = writer.post(
        "/api/v1/models/ghost/versions/", helpers.version_payload(), format="json"
    )
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_model"
    # Where to look, and what registers it (issue 19).
    assert response.json()["detail"] == (
        "No model is registered as 'ghost'. The Registry page lists the models; a model is "
        "registered first (POST /api/v1/models/)."
    )


def test_find_versions_by_commit(writer, registered, login, auditor):
    url = "/api/v1/models/credit-scoring/versions/"
    writer.post(url, helpers.version_payload(), format="json")
    other_commit = commit_id("second")
    writer.post(
        url,
        helpers.version_payload(
            version="1.1.0", commit_sha=other_commit, artifact_sha256=digest("1.1.0")
        ),
        format="json",
    )
    found = login(auditor).get(url, {"commit_sha": other_commit})
    assert found.status_code == 200
    assert [v["version"] for v in found.json()] == ["1.1.0"]
    assert {v["version"] for v in writer.get(url).json()} == {"1.0.0", "1.1.0"}
    detail = writer.get(f"{url}1.0.0/")
    assert detail.status_code == 200
    assert detail.json()["commit_sha"] == commit_id("commit one")


# Who may call


@pytest.mark.parametrize(
    ("url", "payload"),
    [
        ("/api/v1/datasets/", helpers.dataset_payload()),
        ("/api/v1/models/", helpers.model_payload(name="new-model")),
        ("/api/v1/models/credit-scoring/versions/", helpers.version_payload()),
    ],
)
def test_writes_without_registry_scope_are_403(service_caller, registered, url, payload):
    reader = service_caller(Scope.GATE_READ, Scope.DEPLOYMENTS_WRITE).client()
    before = (DatasetVersion.objects.count(), RegisteredModel.objects.count())
    response = reader.post(url, payload, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == (
        "This token lacks the 'registry:write' scope this endpoint needs. Use a token that has "
        "it, or ask an administrator to grant it in Admin → Service accounts."
    )
    assert (DatasetVersion.objects.count(), RegisteredModel.objects.count()) == before
    assert reader.get("/api/v1/models/").status_code == 200


def test_people_read_but_do_not_register(login, requester, registered):
    client = login(requester)
    assert client.get("/api/v1/models/").status_code == 200
    response = client.post("/api/v1/models/", helpers.model_payload(name="x"), format="json")
    assert response.status_code == 403
    assert (
        "run it from the pipeline (gatehouse_ci.py build, docs/ci.md)"
        in (response.json()["detail"])
    )


def test_anonymous_is_401(client, registered):
    assert client.get("/api/v1/models/").status_code in (401, 403)


# Schema and docs


def test_schema_documents_the_registry_endpoints(writer, login, requester):
    response = login(requester).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "post" in paths["/api/v1/datasets/"]
    assert {"get", "post"} <= set(paths["/api/v1/models/"])
    versions = paths["/api/v1/models/{name}/versions/"]
    assert {"get", "post"} <= set(versions)
    assert any(p["name"] == "commit_sha" for p in versions["get"]["parameters"])


def test_swagger_ui_loads_from_local_static_files_only(login, requester):
    response = login(requester).get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    hosts = set(re.findall(r"https?://([^/\"'\s)]+)", html))
    assert hosts <= {"testserver"}, hosts
    assert "swagger-ui" in html
    assets = re.findall(r"(?:src|href)=\"(/static/[^\"]+)\"", html)
    assert len(assets) >= 3
    for asset in assets:
        assert login(requester).get(asset).status_code == 200, asset
