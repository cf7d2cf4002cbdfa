"""The database going away: the API answers 503 with `{"code", "detail"}` JSON and the pages a
plain 503, never a stack trace, and a service that fails half way through leaves nothing
behind, neither its change nor any of its audit events."""

import json

import psycopg2
import pytest
from django.db import OperationalError, connection

from audit.models import AuditEvent
from portal.exceptions import DATABASE_UNREACHABLE
from releases.models import ChangeRequest, Deployment, DeploymentStatus
from releases.services import deployments
from releases.states import State
from tests.conftest import TRANSACTIONAL_APPS
from tests.portal.helpers import without_a_database

# A client in a process of its own whose database is a port where nothing listens.
UNREACHABLE_CLIENT = """
import django, json
django.setup()
from django.test import Client
client = Client(raise_request_exception=False)
token = "Bearer gh_abcdefgh_" + "s" * 40
answers = {
    "token read": client.get("/api/v1/models/", HTTP_AUTHORIZATION=token),
    "token write": client.post(
        "/api/v1/datasets/", {"name": "x"}, content_type="application/json",
        HTTP_AUTHORIZATION=token,
    ),
    "gate": client.post("/api/v1/gate/", {}, content_type="application/json",
        HTTP_AUTHORIZATION=token),
}
client.cookies["sessionid"] = "a" * 32
answers["session read"] = client.get("/api/v1/change-requests/CR-1/")
answers["page"] = client.get("/releases/change-requests/")
print(json.dumps({
    name: [r.status_code, r["Content-Type"], r.content.decode()] for name, r in answers.items()
}))
"""


def test_the_api_answers_503_json_when_the_database_is_unreachable(tmp_path):
    # Debug pages (development) show the stack trace by design; production does not.
    answers, printed = without_a_database(UNREACHABLE_CLIENT, tmp_path, DJANGO_DEBUG="false")
    page_status, page_type, page_body = answers.pop("page")
    assert (page_status, page_type) == (503, "text/plain")
    assert page_body == DATABASE_UNREACHABLE
    assert set(answers) == {"token read", "token write", "gate", "session read"}
    for name, (status, content_type, body) in answers.items():
        assert status == 503, (name, status, body)
        assert content_type == "application/json", (name, content_type)
        assert json.loads(body)["code"] == "database_unavailable", (name, body)
    assert "Traceback" not in printed


@pytest.fixture
def deployment_under_way(envs, builds, ci, clock, approved_for_test):
    """1.0 approved for test and its deployment started, waiting for its result."""
    change = approved_for_test("1.0")
    deployment, _ = deployments.deployment_start(
        actor=ci.account,
        environment=envs["test"],
        model_version=builds["1.0"],
        change_request=change,
        now=clock.now,
    )
    return deployment


def _tail() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def _report_success(ci, deployment):
    return ci.client().post(
        f"/api/v1/deployments/{deployment.pk}/result/", {"status": "succeeded"}, format="json"
    )


def _assert_nothing_written(deployment, start: int) -> None:
    """The deployment still waits for its result, its change is still approved, and neither
    the change request's `deployed` event (written earlier in the same transaction) nor the
    deployment's own event is in the trail."""
    connection.close()
    deployment = Deployment.objects.get(pk=deployment.pk)
    assert deployment.status == DeploymentStatus.STARTED
    assert deployment.succeeded_at is None
    assert ChangeRequest.objects.get(pk=deployment.change_request_id).state == State.APPROVED
    assert _tail() == start


@pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)
def test_a_failure_at_the_last_write_leaves_nothing_half_written(
    deployment_under_way, ci, monkeypatch
):
    """The result moves the change request to deployed and audits that, then fails as the
    database goes away while writing its own event: all of it rolls back together."""
    start = _tail()

    def database_gone(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(deployments, "audit_record", database_gone)
    response = _report_success(ci, deployment_under_way)

    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    monkeypatch.undo()
    _assert_nothing_written(deployment_under_way, start)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="kills a PostgreSQL backend")
@pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)
def test_a_connection_killed_mid_transaction_leaves_nothing_half_written(
    deployment_under_way, ci, monkeypatch
):
    """The real thing: the server ends the request's connection half way through the service
    (as a failover or an administrator would), then the service goes on writing."""
    start = _tail()
    real_audit_record = deployments.audit_record

    def killed_then_write(**kwargs):
        backend = connection.connection.info.backend_pid
        params = connection.get_connection_params()
        with psycopg2.connect(**params) as other, other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [backend])
        return real_audit_record(**kwargs)

    monkeypatch.setattr(deployments, "audit_record", killed_then_write)
    response = _report_success(ci, deployment_under_way)

    assert response.status_code == 503
    assert response.json() == {
        "code": "database_unavailable",
        "detail": DATABASE_UNREACHABLE,
    }
    monkeypatch.undo()
    _assert_nothing_written(deployment_under_way, start)
    # Once the database is back, the same report goes through as if nothing had happened.
    assert _report_success(ci, deployment_under_way).status_code == 200
    actions = list(
        AuditEvent.objects.filter(seq__gt=start).order_by("seq").values_list("action", flat=True)
    )
    assert actions == ["change_request.deployed", "deployment.succeeded"]
