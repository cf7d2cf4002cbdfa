"""Change requests mirrored as change records in ServiceNow and issues in Jira (issue 17),
against the stand-ins of tests/integrations/standins.py: one record per change and one update
per transition whatever fails in between (the broker, a 429, an answer lost after the create),
in the order of the trail, nothing sent when unconfigured, and the link on the change page and
in the API."""

import base64
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from kombu.exceptions import OperationalError

from audit.models import AuditEvent
from integrations import tasks
from integrations.models import ChangeTicket, TicketDeliveryAttempt, TicketTransition, TrailCursor
from integrations.tickets import change_ticket_deliver
from integrations.tickets_http import retry_after_seconds
from portal.celery import app as celery_app
from releases.builders import deploy, file_change, sign
from releases.services.change_requests import (
    change_request_cancel,
    change_request_create,
    change_request_edit,
    change_request_submit,
)
from releases.services.deployments import deployment_rollback
from tests.integrations import standins
from tests.integrations.standins import Fault, servicenow_error

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
BASIC = "Basic " + base64.b64encode(b"gatehouse:s3cret-pass").decode()


@pytest.fixture
def servicenow(settings):
    with standins.servicenow(BASIC) as server:
        settings.GATEHOUSE_TICKETS = "servicenow"
        settings.GATEHOUSE_TICKETS_URL = server.url
        settings.GATEHOUSE_TICKETS_USER = "gatehouse"
        settings.GATEHOUSE_TICKETS_PASSWORD = "s3cret-pass"
        settings.GATEHOUSE_TICKETS_TOKEN = ""
        settings.GATEHOUSE_TICKETS_TIMEOUT = 0.5
        settings.GATEHOUSE_TICKETS_SERVICENOW_ASSIGNMENT_GROUP = "ML Platform"
        yield server


@pytest.fixture
def jira(settings):
    with standins.jira("Bearer jira-token", "OPS") as server:
        settings.GATEHOUSE_TICKETS = "jira"
        settings.GATEHOUSE_TICKETS_URL = server.url
        settings.GATEHOUSE_TICKETS_TOKEN = "jira-token"
        settings.GATEHOUSE_TICKETS_TIMEOUT = 0.5
        settings.GATEHOUSE_TICKETS_JIRA_PROJECT = "OPS"
        settings.GATEHOUSE_TICKETS_JIRA_ISSUE_TYPE = "Change"
        yield server


@pytest.fixture
def sweep(django_capture_on_commit_callbacks):
    """The periodic sweep as beat runs it, its hand-overs to the workers run in place."""
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True

    def run() -> int:
        with django_capture_on_commit_callbacks(execute=True):
            return tasks.sync_change_tickets()

    yield run
    celery_app.conf.task_always_eager = saved


class Broker:
    """Switch the broker off and on again: while off, every hand-over to a worker fails."""

    def __init__(self):
        self.patch = pytest.MonkeyPatch()

    def down(self) -> None:
        def refuse(*args, **kwargs):
            raise OperationalError("[Errno 111] Connection refused")

        task = tasks.deliver_change_ticket._get_current_object()
        self.patch.setattr(type(task), "apply_async", refuse)

    def up(self) -> None:
        self.patch.undo()


@pytest.fixture
def broker():
    switch = Broker()
    yield switch
    switch.up()


@pytest.fixture
def approved(requester, peer, envs, builds, django_clock):
    """A change to test, filed and reviewed by the peer: submitted, then approved."""
    return file_change(
        requester=requester,
        model_version=builds["1.0"],
        environment=envs["test"],
        signers=[peer],
        window_start=django_clock.now,
        now=django_clock.now,
    )


def deployed(change, ci, django_clock):
    deploy(
        actor=ci.account,
        environment=change.environment,
        model_version=change.model_version,
        change_request=change,
        clock=django_clock,
    )
    change.refresh_from_db()
    return change


def transitions(change) -> list[TicketTransition]:
    return list(TicketTransition.objects.filter(ticket__change_request=change).order_by("event_id"))


def test_servicenow_gets_one_record_and_one_update_per_transition_across_an_outage_and_a_429(
    servicenow, sweep, broker, approved, ci, django_clock
):
    broker.down()
    assert sweep() == 1
    assert servicenow.calls == []
    assert [t.kind for t in transitions(approved)] == ["create", "update"]

    broker.up()
    sweep()
    [record] = servicenow.records.values()
    assert record["correlation_id"] == f"gatehouse-cr-{approved.pk}"
    assert record["short_description"] == f"{approved.number} {approved.title}"
    assert record["assignment_group"] == "ML Platform"
    assert record["type"] == "normal"
    assert len(servicenow.updates[record["sys_id"]]) == 1
    assert record["state"] == "-2" and record["approval"] == "approved"
    assert "Peer review (Data Science): approve by peer" in record["description"]

    deployed(approved, ci, django_clock)
    servicenow.faults.append(Fault("PATCH", status=429, headers={"Retry-After": "120"}))
    sweep()
    [waiting] = [t for t in transitions(approved) if t.delivered_at is None]
    assert waiting.attempts == 1 and "429" in waiting.last_error
    assert waiting.next_attempt_at == django_clock.now + timedelta(seconds=120)
    calls = len(servicenow.calls)
    sweep()
    assert len(servicenow.calls) == calls, "sent again before the Retry-After passed"

    django_clock.advance(seconds=121)
    sweep()
    sweep()
    assert len(servicenow.records) == 1
    assert len(servicenow.sent("POST")) == 1
    assert len(servicenow.updates[record["sys_id"]]) == len(transitions(approved)) - 1 == 2
    assert record["state"] == "3" and record["close_code"] == "successful"
    assert record["close_notes"].startswith(f"Deployed {approved.model_version} to test")
    ticket = ChangeTicket.objects.get(change_request=approved)
    assert ticket.reference == "CHG0030001" and ticket.last_synced == transitions(approved)[-1]
    statuses = TicketDeliveryAttempt.objects.filter(transition__ticket=ticket)
    assert 429 in statuses.values_list("status", flat=True)
    linked = AuditEvent.objects.filter(action="change_ticket.linked", object_id=str(approved.pk))
    assert linked.count() == 1 and linked.get().data["reference"] == "CHG0030001"


def test_jira_gets_one_issue_per_change_closed_with_its_result_across_an_outage_and_a_429(
    jira, sweep, broker, requester, peer, envs, builds, ci, django_clock
):
    first = deployed(
        file_change(
            requester=requester,
            model_version=builds["1.0"],
            environment=envs["test"],
            signers=[peer],
            window_start=django_clock.now,
            now=django_clock.now,
        ),
        ci,
        django_clock,
    )
    sweep()
    broker.down()
    second = file_change(
        requester=requester,
        model_version=builds["1.1"],
        environment=envs["test"],
        signers=[peer],
        window_start=django_clock.now,
        now=django_clock.now,
    )
    deployed(second, ci, django_clock)
    sweep()
    assert len(jira.issues) == 1, "the broker was down: the second change waits"
    broker.up()
    jira.faults.append(Fault("PUT", status=429, headers={"Retry-After": "60"}))
    sweep()
    django_clock.advance(seconds=61)
    deployment_rollback(
        actor=ci.account, environment=envs["test"], model="fraud-score", reason="Scores drift."
    )
    sweep()
    sweep()

    assert len(jira.issues) == 2 and len(jira.sent("POST", r"/issue$")) == 2
    for change in (first, second):
        ticket = ChangeTicket.objects.get(change_request=change)
        issue = jira.issues[ticket.reference]
        assert issue["fields"]["labels"] == ["gatehouse", f"gatehouse-cr-{change.pk}"]
        assert issue["fields"]["issuetype"] == {"name": "Change"}
        assert len(issue["edits"]) == len(transitions(change)) - 1
        assert issue["status"]["name"] == "Done"
        assert ticket.url == f"{jira.url}/browse/{ticket.reference}"
    first_issue = jira.issues[ChangeTicket.objects.get(change_request=first).reference]
    second_issue = jira.issues[ChangeTicket.objects.get(change_request=second).reference]
    assert [c["body"].split(" on ")[0] for c in first_issue["comments"]] == [
        "Deployed fraud-score 1.0 to test"
    ]
    assert [c["body"].split(" on ")[0] for c in second_issue["comments"]] == [
        "Deployed fraud-score 1.1 to test",
        "Rolled back",
    ]
    assert "Scores drift." in second_issue["comments"][1]["body"]
    assert "Result:" in second_issue["fields"]["description"]
    assert jira.moves == [(first_issue["key"], "Done"), (second_issue["key"], "Done")]


def test_a_create_whose_answer_is_lost_is_found_not_filed_twice(
    servicenow, sweep, approved, django_clock
):
    servicenow.faults.append(Fault("POST", mode="drop"))
    sweep()
    assert len(servicenow.records) == 1, "the stand-in stored it, then dropped the connection"
    [create, update] = transitions(approved)
    assert create.delivered_at is None and "No answer" in create.last_error
    assert not update.attempts, "never an update before its create"

    django_clock.advance(seconds=31)
    sweep()
    assert len(servicenow.records) == 1 and len(servicenow.sent("POST")) == 1
    [record] = servicenow.records.values()
    assert all(t.delivered_at for t in transitions(approved))
    assert len(servicenow.updates[record["sys_id"]]) == 2, "the create's state, then the update"
    linked = AuditEvent.objects.get(action="change_ticket.linked", object_id=str(approved.pk))
    assert linked.data["found_existing"] is True


def test_a_jira_create_answered_after_the_timeout_is_found_not_filed_twice(
    jira, sweep, approved, django_clock
):
    jira.faults.append(Fault("POST", mode="slow", path="/rest/api/2/issue", delay=1.2))
    sweep()
    assert [t.delivered_at for t in transitions(approved)] == [None, None]
    django_clock.advance(seconds=31)
    sweep()
    [issue] = jira.issues.values()
    assert len(jira.sent("POST", r"/issue$")) == 1
    assert ChangeTicket.objects.get(change_request=approved).reference == issue["key"]
    assert len(issue["edits"]) == 2


@pytest.mark.parametrize(
    "fault, said",
    [
        (Fault("POST", status=500, body=servicenow_error("Internal error")), "500"),
        (
            Fault(
                "POST",
                status=400,
                body=servicenow_error("Operation Failed", "Data Policy Exception: risk"),
            ),
            "400 Bad Request: Operation Failed: Data Policy Exception: risk",
        ),
    ],
)
def test_an_error_answer_is_logged_and_retried_with_a_growing_wait(
    servicenow, sweep, approved, django_clock, fault, said
):
    servicenow.faults += [fault, Fault("POST", status=fault.status, body=fault.body)]
    sweep()
    [create, _] = transitions(approved)
    assert said in create.last_error
    assert create.next_attempt_at == django_clock.now + timedelta(seconds=30)
    django_clock.advance(seconds=30)
    sweep()
    create.refresh_from_db()
    assert create.attempts == 2
    assert create.next_attempt_at == django_clock.now + timedelta(seconds=60)
    django_clock.advance(seconds=60)
    sweep()
    assert len(servicenow.records) == 1
    assert all(t.delivered_at for t in transitions(approved))
    log = TicketDeliveryAttempt.objects.filter(transition=create).order_by("id")
    assert [(a.attempt, a.method, a.status, a.ok) for a in log] == [
        (1, "GET", 200, True),
        (1, "POST", fault.status, False),
        (2, "GET", 200, True),
        (2, "POST", fault.status, False),
        (3, "GET", 200, True),
        (3, "POST", 201, True),
    ]


def test_wrong_credentials_send_nothing_until_they_are_fixed(
    servicenow, sweep, approved, settings, django_clock
):
    settings.GATEHOUSE_TICKETS_PASSWORD = "wrong"
    sweep()
    [create, _] = transitions(approved)
    assert "401 Unauthorized: User Not Authenticated" in create.last_error
    assert servicenow.records == {}

    settings.GATEHOUSE_TICKETS_PASSWORD = "s3cret-pass"
    django_clock.advance(seconds=30)
    sweep()
    assert len(servicenow.records) == 1


def test_jira_refusing_the_token_files_nothing(jira, sweep, approved, settings):
    settings.GATEHOUSE_TICKETS_TOKEN = "expired-token"
    sweep()
    [create, _] = transitions(approved)
    assert create.last_error.startswith("401 Unauthorized: You are not authenticated.")
    assert jira.issues == {} and jira.sent("POST") == []


def test_jira_refusing_the_issue_type_says_why(jira, sweep, approved, settings, django_clock):
    settings.GATEHOUSE_TICKETS_JIRA_ISSUE_TYPE = "Chnage"
    sweep()
    [create, _] = transitions(approved)
    assert "400 Bad Request: issuetype: Specify a valid issue type" in create.last_error
    settings.GATEHOUSE_TICKETS_JIRA_ISSUE_TYPE = "Change"
    django_clock.advance(seconds=30)
    sweep()
    assert len(jira.issues) == 1


def test_a_record_deleted_in_the_ticket_system_is_filed_again(
    servicenow, sweep, approved, requester, django_clock
):
    sweep()
    servicenow.records.clear()
    change_request_cancel(actor=requester, change_request=approved, reason="Not needed now.")
    sweep()
    ticket = ChangeTicket.objects.get(change_request=approved)
    assert ticket.reference == "" and "404" in transitions(approved)[-1].last_error
    sweep()
    [record] = servicenow.records.values()
    ticket.refresh_from_db()
    assert ticket.reference == record["number"] == "CHG0030002"
    assert record["state"] == "4" and "Not needed now." in record["close_notes"]
    assert all(t.delivered_at for t in transitions(approved))


def test_an_update_never_goes_before_its_create_and_other_changes_go_on(
    servicenow, sweep, approved, requester, peer, envs, builds, django_clock
):
    servicenow.faults.append(Fault("POST", status=503, body=servicenow_error("Unavailable")))
    sweep()
    assert servicenow.sent("PATCH") == []
    other = file_change(
        requester=requester,
        model_version=builds["1.1"],
        environment=envs["test"],
        window_start=django_clock.now,
        now=django_clock.now,
    )
    sweep()
    assert [r["short_description"] for r in servicenow.records.values()] == [
        f"{other.number} {other.title}"
    ]
    assert servicenow.sent("PATCH") == [], "the failed create's update waits behind it"


def test_one_delivery_at_a_time_per_ticket(servicenow, sweep, approved, broker):
    broker.down()
    sweep()
    ticket = ChangeTicket.objects.get(change_request=approved)
    ticket.leased_until = ticket.created_at + timedelta(hours=1)
    ticket.save()
    assert change_ticket_deliver(ticket_id=ticket.pk) == 0
    assert servicenow.calls == []


def test_drafts_are_not_mirrored(servicenow, sweep, requester, envs, builds, django_clock):
    draft = change_request_create(
        actor=requester,
        model_version=builds["1.0"],
        environment=envs["test"],
        title="Try 1.0",
        justification="Maybe.",
        rollback_plan="Roll back.",
        window_start=django_clock.now + timedelta(days=1),
        window_end=django_clock.now + timedelta(days=2),
    )
    change_request_edit(actor=requester, change_request=draft, title="Try 1.0 again")
    change_request_cancel(actor=requester, change_request=draft, reason="Changed my mind.")
    sweep()
    assert servicenow.calls == [] and not ChangeTicket.objects.exists()


def test_an_edit_after_submission_sends_the_record_back_to_new(
    servicenow, sweep, approved, requester, peer
):
    sweep()
    [record] = servicenow.records.values()
    change_request_edit(actor=requester, change_request=approved, title="Release 1.0, again")
    sweep()
    assert record["short_description"] == f"{approved.number} Release 1.0, again"
    assert (record["state"], record["approval"]) == ("-5", "not requested")
    assert "Sign-offs so far:\n- none yet" in record["description"]
    assert "Gate: would refuse the deployment now:\n- no_approved_change" in record["description"]

    change_request_submit(actor=requester, change_request=approved)
    sign(peer, approved)
    sweep()
    assert (record["state"], record["approval"]) == ("-2", "approved")
    assert len(servicenow.updates[record["sys_id"]]) == len(transitions(approved)) - 1 == 4


def test_nothing_is_sent_or_read_when_unconfigured(servicenow, sweep, approved, settings):
    settings.GATEHOUSE_TICKETS = ""
    assert sweep() == 0
    call_command("sync_change_tickets")
    assert servicenow.calls == []
    assert not ChangeTicket.objects.exists() and not TicketTransition.objects.exists()
    assert not TrailCursor.objects.filter(name="tickets").exists()


def test_the_command_syncs_by_hand_without_the_broker(servicenow, broker, approved, capsys):
    broker.down()
    call_command("sync_change_tickets")
    assert len(servicenow.records) == 1
    assert "2 transition(s) delivered to servicenow, 0 waiting" in capsys.readouterr().out


def test_the_link_is_on_the_change_page_and_in_the_api(
    servicenow, sweep, approved, requester, builds, envs, login, django_clock
):
    sweep()
    unlinked = file_change(
        requester=requester,
        model_version=builds["1.1"],
        environment=envs["test"],
        window_start=django_clock.now,
        now=django_clock.now,
    )
    ticket = ChangeTicket.objects.get(change_request=approved)
    url = f"{servicenow.url}/change_request.do?sys_id={ticket.external_id}"
    client = login(requester)

    page = client.get(reverse("releases:change-request", args=[approved.number])).content.decode()
    assert f'<a href="{url}" target="_blank" rel="noopener noreferrer"' in page
    assert "ServiceNow CHG0030001 ↗" in page
    other = client.get(reverse("releases:change-request", args=[unlinked.number])).content.decode()
    assert "Change ticket" not in other

    link = {"system": "ServiceNow", "reference": "CHG0030001", "url": url}
    detail = client.get(f"/api/v1/change-requests/{approved.number}/").json()
    assert detail["external_links"] == [link]
    results = client.get("/api/v1/change-requests/").json()["results"]
    assert {c["number"]: c["external_links"] for c in results} == {
        approved.number: [link],
        unlinked.number: [],
    }


def test_retry_after_in_seconds_or_as_a_date_within_bounds(django_clock):
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds("0") == 1
    assert retry_after_seconds("86400") == 3600
    moment = django_clock.now + timedelta(seconds=90)
    assert retry_after_seconds(moment.strftime("%a, %d %b %Y %H:%M:%S GMT")) == 90
    assert retry_after_seconds("soon") is None


def test_a_half_configured_ticket_system_stops_the_portal_from_starting(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "GATEHOUSE_VAR_DIR": str(tmp_path),
        "CELERY_BROKER_URL": "memory://",
        "GATEHOUSE_TICKETS": "jira",
        "GATEHOUSE_TICKETS_URL": "https://jira.bank.example",
        "GATEHOUSE_TICKETS_TOKEN": "t",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Change tickets: GATEHOUSE_TICKETS_JIRA_PROJECT is missing." in result.stderr


def test_staff_read_the_delivery_log_in_the_admin(
    servicenow, sweep, approved, login, administrator, requester, django_clock
):
    servicenow.faults.append(Fault("POST", status=429, headers={"Retry-After": "5"}))
    sweep()
    django_clock.advance(seconds=5)
    sweep()
    create = transitions(approved)[0]
    ticket = create.ticket
    client = login(administrator)

    page = client.get(reverse("admin:integrations_tickettransition_change", args=[create.pk]))
    assert page.status_code == 200
    log = page.content.decode()
    assert "429 Too Many Requests" in log and "/api/now/table/change_request" in log
    assert f"&quot;number&quot;: &quot;{approved.number}&quot;" in log
    listing = client.get(reverse("admin:integrations_changeticket_change", args=[ticket.pk]))
    assert "CHG0030001" in listing.content.decode()

    client.logout()
    client = login(requester)
    assert client.get(reverse("admin:integrations_changeticket_changelist")).status_code == 302
