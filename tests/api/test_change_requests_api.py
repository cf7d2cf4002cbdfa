"""POST /api/v1/change-requests/ and GET /api/v1/change-requests/{number}/."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from portal.models import Scope
from releases.builders import change_fields
from releases.services import change_requests as services
from releases.services import policy

pytestmark = pytest.mark.django_db
URL = "/api/v1/change-requests/"


@pytest.fixture
def as_requester(requester):
    client = APIClient()
    client.force_authenticate(requester)
    return client


def payload(**overrides):
    start = timezone.now() + timedelta(days=3)
    body = {
        "model": "fraud-detector",
        "version": "1.0.0",
        "environment": "prod",
        "title": "Release fraud-detector 1.0.0",
        "justification": "Better recall.",
        "risk": "Scores shift for 2% of transactions.",
        "test_evidence": "Backtest on October.",
        "rollback_plan": "Roll back to the live version.",
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(hours=4)).isoformat(),
    }
    return {**body, **overrides}


def test_a_person_files_a_change_request(as_requester, envs, version):
    response = as_requester.post(URL, payload(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["number"] == f"CR-{body['id']}"
    assert body["state"] == "in_review"
    assert body["model"] == "fraud-detector" and body["version"] == "1.0.0"
    assert body["model_version_id"] == version.pk
    assert body["artifact_sha256"] == version.artifact_sha256
    assert body["environment"] == "prod"
    assert body["requester"] == "requester" and body["team"] == "data-science"
    assert body["risk"] == "Scores shift for 2% of transactions."
    assert body["policy_version"] == 1
    assert len(body["content_digest"]) == 64
    assert body["sign_offs"] == []


def test_a_draft_when_asked(as_requester, envs, version):
    response = as_requester.post(URL, payload(submit=False), format="json")
    assert response.status_code == 201
    assert response.json()["state"] == "draft"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"window_start": None}, "window_start"),
        ({"window_start": "2026-11-26T09:00"}, "window_start"),
        ({"title": ""}, "title"),
        ({"rollback_plan": None}, "rollback_plan"),
        ({"team": "no such team"}, "team"),
        ({"kind": "emergency", "incident_ref": ""}, "incident_ref"),
        ({"kind": "sometimes"}, "kind"),
    ],
)
def test_field_errors_are_400(as_requester, envs, version, change, field):
    response = as_requester.post(URL, payload(**change), format="json")
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"version": "9.9.9"}, "unknown_build"),
        ({"environment": "staging"}, "unknown_environment"),
        ({"team": "no-such-team"}, "unknown_team"),
    ],
)
def test_names_that_name_nothing_are_404(as_requester, envs, version, change, code):
    response = as_requester.post(URL, payload(**change), format="json")
    assert response.status_code == 404
    assert response.json()["code"] == code


def test_window_end_before_start_is_a_field_error(as_requester, envs, version):
    start = timezone.now() + timedelta(days=3)
    response = as_requester.post(
        URL,
        payload(window_start=start.isoformat(), window_end=start.isoformat()),
        format="json",
    )
    assert response.status_code == 400
    assert "window_end" in response.json()


def test_rule_denials_carry_their_code(as_requester, envs, version):
    start = timezone.now() + timedelta(days=3)
    policy.freeze_window_create(
        actor=None,
        environment=envs["prod"],
        starts_at=start - timedelta(days=1),
        ends_at=start + timedelta(days=1),
        reason="Year-end",
    )
    response = as_requester.post(URL, payload(), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "freeze_in_effect"
    past = timezone.now() - timedelta(days=2)
    response = as_requester.post(
        URL,
        payload(
            environment="test",
            window_start=past.isoformat(),
            window_end=(past + timedelta(hours=1)).isoformat(),
        ),
        format="json",
    )
    assert response.status_code == 403
    assert response.json()["code"] == "window_in_past"


def test_an_emergency_is_filed_for_authorisation(as_requester, envs, version):
    response = as_requester.post(
        URL,
        payload(kind="emergency", incident_ref="INC-1", window_start=None, window_end=None),
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["state"] == "awaiting_authorisation"


@pytest.mark.parametrize(
    "scopes",
    [[Scope.GATE_READ], [Scope.DEPLOYMENTS_WRITE], list(Scope.values)],
)
def test_tokens_do_not_file_change_requests(service_caller, envs, version, scopes):
    response = service_caller(*scopes).client().post(URL, payload(), format="json")
    assert response.status_code == 403
    assert "people" in response.json()["detail"]


def test_anonymous_callers_are_refused(envs, version):
    assert APIClient().post(URL, payload(), format="json").status_code in (401, 403)
    assert APIClient().get(f"{URL}CR-1/").status_code in (401, 403)


def test_read_by_number_with_any_token(service_caller, requester, peer, password, envs, version):
    change_request = services.change_request_file(
        actor=requester, **change_fields(version, envs["prod"])
    )
    services.change_request_sign(
        actor=peer,
        change_request=change_request,
        decision="approve",
        password=password,
        content_digest=change_request.content_digest,
    )
    for scopes in ([Scope.GATE_READ], [Scope.REGISTRY_WRITE]):
        response = service_caller(*scopes).client().get(f"{URL}{change_request.number}/")
        assert response.status_code == 200
        body = response.json()
        assert body["id"] == change_request.pk and body["state"] == "in_approval"
        (sign_off,) = body["sign_offs"]
        assert sign_off["id"] and sign_off["kind"] == "peer_review"
        assert sign_off["signer"] == "peer" and sign_off["team"] == "data-science"
        assert sign_off["policy_version"] == 1
        assert sign_off["meaning"].startswith(f"I approve {change_request.number}")


@pytest.mark.parametrize("number", ["CR-999999", "CR-x", "42", "cr--1"])
def test_unknown_numbers_are_404(as_requester, envs, number):
    response = as_requester.get(f"{URL}{number}/")
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_change_request"


def test_the_schema_documents_both_endpoints(as_requester):
    response = as_requester.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    text = response.content.decode()
    assert "/api/v1/change-requests/" in text
    assert "/api/v1/change-requests/{number}/" in text


def test_the_list_filters_by_state_and_pages_by_cursor(service_caller, requester, envs, version):
    filed = [
        services.change_request_file(actor=requester, **change_fields(version, envs["prod"]))
        for _ in range(3)
    ]
    services.change_request_cancel(actor=requester, change_request=filed[0], reason="Not now.")
    assert service_caller(Scope.GATE_READ).client().get(URL).status_code == 403
    client = service_caller(Scope.READ).client()
    first = client.get(URL, {"state": "in_review", "page_size": 1})
    assert first.status_code == 200, first.content
    body = first.json()
    assert [item["number"] for item in body["results"]] == [filed[2].number]
    second = client.get(body["next"]).json()
    assert [item["number"] for item in second["results"]] == [filed[1].number]
    assert second["next"] is None
    assert client.get(URL, {"state": "sideways"}).json()["code"] == "invalid_filter"
    assert len(client.get(URL, {"environment": "prod", "kind": "normal"}).json()["results"]) == 3
    assert client.get(URL, {"environment": "staging"}).json()["results"] == []
    assert client.get(URL, {"kind": "emergency"}).json()["results"] == []
