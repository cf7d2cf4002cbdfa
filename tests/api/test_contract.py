"""The server refuses what the OpenAPI schema calls invalid, with the house's error shape, and
the schema says what the server checks (issue 17): JSON bodies only, RFC 3339 moments, cursors
of one stated pattern, a build named by its version or its digest, names that name nothing."""

import pytest
import yaml
from rest_framework.test import APIClient

from portal.models import Scope

pytestmark = pytest.mark.django_db

GATE = "/api/v1/gate/"


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


@pytest.fixture
def reader(service_caller) -> APIClient:
    return service_caller(Scope.READ, Scope.GATE_READ, Scope.AUDIT_READ).client()


def test_a_form_body_is_415_and_the_schema_offers_json_only(reader, envs, schema):
    response = reader.post(GATE, {"environment": "dev", "model": "fraud-score"}, format="multipart")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    gate = schema["paths"][GATE]["post"]
    assert list(gate["requestBody"]["content"]) == ["application/json"]
    assert "415" in gate["responses"]


@pytest.mark.parametrize(
    "raw",
    ["", "2026-11-26T09:00+01:00", "2026-11-26 09:00:00+01:00", "2026-11-26T09:00:00"],
)
def test_moments_are_rfc_3339_with_seconds_and_offset(reader, envs, raw):
    live = reader.get("/api/v1/environments/test/live/", {"at": raw})
    assert live.status_code == 400
    assert live.json()["code"] == "invalid_at"
    export = reader.get("/api/v1/audit/export/", {"until": raw})
    assert export.status_code == 400
    assert "until" in export.json()


def test_a_moment_before_year_one_in_utc_is_before_everything(reader, envs):
    live = reader.get("/api/v1/environments/test/live/", {"at": "0001-01-01T00:00:00+05:00"})
    assert live.status_code == 200
    assert live.json()["models"] == []


def test_cursors_follow_their_stated_pattern(reader, envs, schema):
    parameters = schema["paths"]["/api/v1/deployments/"]["get"]["parameters"]
    cursor = next(p for p in parameters if p["name"] == "cursor")
    assert cursor["schema"]["pattern"] == "^[0-9]{1,4}[fr](?:[0-9]{1,18})?$"
    assert reader.get("/api/v1/deployments/", {"cursor": "0f12"}).status_code == 200
    refused = reader.get("/api/v1/deployments/", {"cursor": "cD0xMjM="})
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_cursor"
    page_size = next(p for p in parameters if p["name"] == "page_size")
    assert (page_size["schema"]["minimum"], page_size["schema"]["maximum"]) == (1, 200)


def test_an_enum_filter_lists_what_it_takes(reader, envs):
    response = reader.get("/api/v1/models/", {"risk_tier": "7"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_filter"
    assert response.json()["fields"]["risk_tier"][-1] == "It takes: 1, 2, 3."


def test_the_gate_takes_a_version_or_a_digest_as_the_schema_says(reader, builds, schema):
    question = {"environment": "dev", "model": "fraud-score"}
    assert reader.post(GATE, question, format="json").status_code == 400
    assert reader.post(GATE, {**question, "version": "1.0"}, format="json").status_code == 200
    named = schema["components"]["schemas"]["GateInputRequest"]["oneOf"]
    assert {"required": ["version"]} in named
    assert schema["components"]["schemas"]["GateInputRequest"]["additionalProperties"] is False
    unknown = reader.post(GATE, {**question, "version": "1.0", "versoin": "1"}, format="json")
    assert unknown.status_code == 400
    assert unknown.json()["versoin"] == ["Unknown field."]


def test_json_types_are_not_converted(reader, builds):
    question = {"environment": "dev", "model": "fraud-score", "version": 1}
    response = reader.post(GATE, question, format="json")
    assert response.status_code == 400
    assert response.json()["version"] == ["Must be a JSON string."]


def test_shapes_are_stated_as_patterns(schema):
    version = schema["components"]["schemas"]["ModelVersionInputRequest"]["properties"]
    assert version["commit_sha"]["pattern"] == "^[0-9a-f]{40}$"
    assert version["artifact_sha256"]["pattern"] == "^[0-9a-f]{64}$"
    assert version["build_url"]["oneOf"][0]["maxLength"] == 500  # or blank, the other one
    assert version["repository"]["maxLength"] == 500


def test_filing_a_change_request_links_to_reading_it(schema):
    filed = schema["paths"]["/api/v1/change-requests/"]["post"]["responses"]["201"]
    assert set(filed["links"]) == {"ReadChangeRequest", "ReadSignOffs", "ReadDeployments"}
    assert filed["links"]["ReadDeployments"]["parameters"] == {
        "change_request": "$response.body#/number"
    }


def test_text_is_read_as_sent_so_max_length_counts_every_character(reader, builds, schema):
    """DRF would trim first: a name past its maxLength that ends in spaces would pass."""
    model = schema["components"]["schemas"]["GateInputRequest"]["properties"]["model"]
    padded = "fraud-score".ljust(model["maxLength"] + 1)
    question = {"environment": "dev", "model": padded, "version": "1.0"}
    too_long = reader.post(GATE, question, format="json")
    assert too_long.status_code == 400
    assert "model" in too_long.json()
    unpadded = reader.post(GATE, {**question, "model": "fraud-score "}, format="json")
    assert unpadded.status_code == 200
    assert "unknown_model" in [reason["code"] for reason in unpadded.json()["reasons"]]
    blank = reader.post(GATE, {**question, "model": "   "}, format="json")
    assert blank.status_code == 400
    assert blank.json()["model"] == ["This field may not be blank."]
    assert reader.get("/api/v1/models/", {"owner_team": "data-science "}).status_code == 400


def test_a_builds_params_and_metrics_hold_what_the_schema_says(schema):
    params = schema["components"]["schemas"]["ModelVersionInputRequest"]["properties"]["params"]
    kinds = params["additionalProperties"]["anyOf"]
    number = next(kind for kind in kinds if kind.get("type") == "number")
    assert (number["minimum"], number["maximum"]) == (-(2**53 - 1), 2**53 - 1)
    assert {"type": "boolean", "nullable": True} in kinds
    nested = next(kind for kind in kinds if kind.get("type") == "array")
    assert nested["items"]["anyOf"] == kinds[:3]
