"""GET /api/v1/audit/events/ and /api/v1/audit/verify/: audit readers and audit:read tokens."""

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from audit.actions import AuditAction
from audit.services import audit_record, audit_verify, auditor_add

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/audit/events/"
VERIFY = "/api/v1/audit/verify/"
SIGNED, OTHER = AuditAction.CHANGE_REQUEST_SIGNED, AuditAction.DEPLOYMENT_FAILED


@pytest.fixture
def events(org):
    team = org["model-risk"]
    recorded = []
    for number in range(5):
        with transaction.atomic():
            recorded.append(
                audit_record(
                    actor=None,
                    action=SIGNED if number % 2 == 0 else OTHER,
                    target=team,
                    environment="prod",
                    data={"number": number},
                )
            )
    return recorded


@pytest.fixture
def reader(auditor, password):
    auditor_add(actor=None, user=auditor)
    client = APIClient()
    client.login(username=auditor.username, password=password)
    return client


def test_token_with_audit_read_lists_events(service_caller, events):
    response = service_caller("audit:read").client().get(EVENTS, {"action": SIGNED})
    assert response.status_code == 200
    body = response.json()
    assert [e["seq"] for e in body["results"]][:3] == [events[4].seq, events[2].seq, events[0].seq]
    first = body["results"][0]
    assert first["id"] == first["seq"]
    assert first["hash"] == events[4].hash
    assert first["body"] == events[4].body


@pytest.mark.parametrize("url", [EVENTS, VERIFY])
def test_tokens_without_the_scope_are_refused(service_caller, url):
    response = service_caller("gate:read", "registry:write").client().get(url)
    assert response.status_code == 403
    assert "audit:read" in response.json()["detail"]


@pytest.mark.parametrize("url", [EVENTS, VERIFY])
def test_people_without_audit_rights_are_refused(requester, password, url):
    client = APIClient()
    client.login(username=requester.username, password=password)
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("url", [EVENTS, VERIFY])
def test_anonymous_callers_are_refused(url):
    assert APIClient().get(url).status_code in (401, 403)


def test_auditor_session_reads_and_cursor_walks_every_page(reader, events):
    seen, url, params = [], EVENTS, {"environment": "prod", "limit": 2}
    while url:
        response = reader.get(url, params)
        assert response.status_code == 200
        body = response.json()
        assert len(body["results"]) <= 2
        seen += [e["seq"] for e in body["results"]]
        url, params = body["next"], None
    assert seen[:5] == [e.seq for e in reversed(events)]
    assert len(seen) == len(set(seen))


def test_filters_combine(reader, events):
    response = reader.get(
        EVENTS,
        {
            "action": OTHER,
            "object_type": "portal.team",
            "object_id": events[0].object_id,
            "since": events[1].occurred_at.isoformat(),
            "until": events[3].occurred_at.isoformat(),
        },
    )
    assert [e["seq"] for e in response.json()["results"]] == [events[3].seq, events[1].seq]


def test_invalid_query_is_a_400_with_field_messages(reader):
    response = reader.get(EVENTS, {"since": "yesterday", "limit": 0, "action": "made.up"})
    assert response.status_code == 400
    assert set(response.json()) >= {"since", "limit", "action"}


def test_verify_reports_the_last_verification_and_checkpoint(service_caller, events):
    client = service_caller("audit:read").client()
    run, _report = audit_verify(actor=None)
    body = client.get(VERIFY).json()
    assert body["last_verification"]["id"] == run.pk
    assert body["last_verification"]["ok"] is True
    assert body["key_id"]
    assert body["public_key"].startswith("-----BEGIN PUBLIC KEY-----")
