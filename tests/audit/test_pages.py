"""The auditor pages, the public key, the navigation link and the read-only admin."""

import csv
import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit import keys
from audit.actions import AuditAction
from audit.models import AuditCheckpoint, AuditEvent
from audit.services import audit_checkpoint_create, audit_verify

pytestmark = pytest.mark.django_db

SIGNED, OTHER = AuditAction.CHANGE_REQUEST_SIGNED, AuditAction.DEPLOYMENT_FAILED


@pytest.fixture
def events(org, record_events):
    return record_events(3, action=SIGNED, target=org["model-risk"], environment="prod")


@pytest.mark.parametrize("persona", ["auditor", "change_manager", "administrator"])
def test_readers_see_the_event_list(request, login, events, persona):
    response = login(request.getfixturevalue(persona)).get(reverse("audit:events"))
    assert response.status_code == 200
    assert SIGNED.encode() in response.content
    assert b'href="/audit/">Audit trail</a>' in response.content


@pytest.mark.parametrize("persona", ["requester", "model_risk_approver"])
def test_others_are_refused_and_see_no_link(request, login, events, persona):
    client = login(request.getfixturevalue(persona))
    for name in ("audit:events", "audit:export-csv", "audit:export-jsonl"):
        assert client.get(reverse(name)).status_code == 403
    timeline = reverse("audit:timeline", args=["portal.team", events[0].object_id])
    assert client.get(timeline).status_code == 403
    assert b"Audit trail</a>" not in client.get("/").content


def test_signed_out_visitors_are_sent_to_sign_in(client, events):
    response = client.get(reverse("audit:events"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_public_key_is_reachable_without_sign_in(client):
    pem = keys.public_key_pem()
    page = client.get(reverse("audit:public-key"))
    assert page.status_code == 200
    assert keys.current_key_id() in page.content.decode()
    file = client.get(reverse("audit:public-key-pem"))
    assert file.status_code == 200
    assert file.content.decode() == pem


def test_filters_and_cursor_on_the_page(login, auditor, org, record_events, events):
    record_events(2, action=OTHER, target=org["platform-operations"])
    client = login(auditor)
    page = client.get(reverse("audit:events"), {"action": SIGNED})
    listed = [e.seq for e in page.context["page"].events]
    assert listed[:3] == [e.seq for e in reversed(events)]
    assert all(AuditEvent.objects.get(seq=seq).action == SIGNED for seq in listed)
    second = client.get(reverse("audit:events"), {"action": SIGNED, "cursor": events[1].seq})
    assert second.context["page"].events[0].seq == events[0].seq


def test_bad_filter_values_show_errors_not_a_crash(login, auditor, events):
    client = login(auditor)
    response = client.get(reverse("audit:events"), {"since": "not a date"})
    assert response.status_code == 200
    assert response.context["form"].errors["since"]
    assert response.context["page"].events == []
    assert client.get(reverse("audit:export-csv"), {"until": "nope"}).status_code == 400


def test_object_timeline(login, auditor, org, record_events, events):
    record_events(1, action=OTHER, target=org["platform-operations"])
    team = org["model-risk"]
    response = login(auditor).get(reverse("audit:timeline", args=["portal.team", str(team.pk)]))
    assert response.status_code == 200
    timeline = response.context["page"].events
    assert {e.object_id for e in timeline} == {str(team.pk)}
    assert [e.seq for e in timeline][:3] == [e.seq for e in reversed(events)]


def test_event_list_query_count_stays_flat(login, auditor, org, record_events):
    client = login(auditor)
    record_events(2, action=AuditAction.ENVIRONMENT_UPDATED, target=org["model-risk"])
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("audit:events"), {"action": AuditAction.ENVIRONMENT_UPDATED})
    record_events(20, action=AuditAction.ENVIRONMENT_UPDATED, target=org["model-risk"])
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("audit:events"), {"action": AuditAction.ENVIRONMENT_UPDATED})
    assert len(many) == len(few)


def test_csv_export_streams_the_filtered_set(login, auditor, org, record_events, events):
    record_events(2, action=OTHER)
    response = login(auditor).get(reverse("audit:export-csv"), {"action": SIGNED})
    assert response.status_code == 200
    assert response.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {row["action"] for row in rows} == {SIGNED}
    assert [int(row["seq"]) for row in rows][:3] == [e.seq for e in reversed(events)]
    assert rows[0]["hash"] == events[-1].hash


def test_csv_export_defuses_spreadsheet_formulas(login, auditor, record_events):
    from django.db import transaction

    from audit.services import audit_record

    with transaction.atomic():
        audit_record(actor=None, action=AuditAction.GATE_CHECKED, environment="=HYPERLINK(1)")
    response = login(auditor).get(reverse("audit:export-csv"), {"environment": "=HYPERLINK(1)"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[1][9] == "'=HYPERLINK(1)"


def test_jsonl_export_is_the_signed_trail_of_the_time_range(login, auditor, record_events, events):
    record_events(2, action=OTHER)
    response = login(auditor).get(reverse("audit:export-jsonl"), {"environment": "prod"})
    records = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    kinds = [record["type"] for record in records]
    assert kinds[0] == "header" and kinds[-2:] == ["head", "end"]
    exported = [record["seq"] for record in records if record["type"] == "event"]
    assert exported == list(range(1, AuditEvent.objects.count() + 1))


def test_banner_shows_the_last_verification(login, auditor, events):
    client = login(auditor)
    run, _report = audit_verify(actor=None)
    content = client.get(reverse("audit:events")).content.decode()
    assert "Trail intact" in content
    assert f"{run.events_checked} events" in content


def test_admin_is_read_only_even_for_superusers(login, administrator, events):
    checkpoint = audit_checkpoint_create(actor=None)
    client = login(administrator)
    event = events[0]
    assert client.get("/admin/audit/auditevent/").status_code == 200
    assert client.get(f"/admin/audit/auditevent/{event.seq}/change/").status_code == 200
    assert client.get("/admin/audit/auditevent/add/").status_code == 403
    assert client.get(f"/admin/audit/auditevent/{event.seq}/delete/").status_code == 403
    response = client.post(f"/admin/audit/auditevent/{event.seq}/change/", {"action": "forged"})
    assert response.status_code == 403
    assert AuditEvent.objects.get(seq=event.seq).action == event.action
    assert client.get(f"/admin/audit/auditcheckpoint/{checkpoint.pk}/delete/").status_code == 403
    assert AuditCheckpoint.objects.filter(pk=checkpoint.pk).exists()
