"""The periodic jobs of releases: health polling against a real local HTTP server, expiry,
reminders and the escalation of overdue emergency retrospectives with a controlled clock."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from portal.celery import app as celery_app
from portal.models import Notification
from registry.builders import build_register
from releases import tasks
from releases.builders import emergency_deployed, file_change
from releases.models import HealthCheck, UnauthorisedChange
from releases.services.deployments import deployment_record_result, deployment_start
from releases.states import State
from tests.stubs import JsonHandler, serving

pytestmark = pytest.mark.django_db

FOREIGN = "f" * 64


class HealthEndpoints(JsonHandler):
    expected: dict[str, str] = {}

    def do_GET(self):
        name = self.path.strip("/")
        if name == "slow":
            time.sleep(2)
        if name == "unhealthy":
            status, body = 503, {"status": "down"}
        elif name == "foreign":
            status, body = 200, {"status": "ok", "artifact_sha256": FOREIGN}
        else:
            status, body = 200, {"status": "ok", "artifact_sha256": self.expected.get(name, "")}
        self.answer(status, body)


@pytest.fixture
def health_server():
    with serving(HealthEndpoints) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def eager(monkeypatch):
    """Run the fanned-out probes inline; the worker itself is tested in tests/worker."""
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    monkeypatch.setattr(tasks, "HEALTH_TIMEOUT_SECONDS", 0.5)
    yield
    celery_app.conf.task_always_eager = saved


def live_with_health_url(ci, environment, name, url, clock):
    build = build_register(name, "1.0")
    HealthEndpoints.expected[name] = build.artifact_sha256
    deployment, _ = deployment_start(
        actor=ci.account,
        environment=environment,
        model_version=build,
        health_url=url,
        now=clock.now,
    )
    return deployment_record_result(
        actor=ci.account, deployment=deployment, status="succeeded", now=clock.now
    )


def test_health_polling_records_each_case_and_flags_a_foreign_digest(
    envs, ci, clock, health_server, eager, login, requester
):
    deployments = {
        case: live_with_health_url(ci, envs["dev"], case, f"{health_server}/{case}", clock)
        for case in ("healthy", "unhealthy", "slow", "foreign")
    }
    before = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()

    assert tasks.poll_health() == 4

    checks = {case: HealthCheck.objects.get(deployment=d) for case, d in deployments.items()}
    assert checks["healthy"].ok and checks["healthy"].latency_ms is not None
    assert not checks["unhealthy"].ok and checks["unhealthy"].status_code == 503
    assert not checks["slow"].ok and checks["slow"].detail.startswith("No answer")
    assert checks["foreign"].ok and checks["foreign"].reported_sha256 == FOREIGN
    flag = UnauthorisedChange.objects.get()
    assert flag.deployment == deployments["foreign"] and flag.reported_sha256 == FOREIGN
    detected = AuditEvent.objects.filter(
        seq__gt=before, action="deployment.unauthorised_change_detected"
    )
    assert [event.data["model"] for event in detected] == ["foreign"]

    page = login(requester).get("/releases/environments/dev/").content.decode()
    assert "unauthorised digest" in page
    assert f"{checks['healthy'].latency_ms} ms" in page
    live = page[page.index('aria-label="Live models"') : page.index('aria-label="Ledger and')]
    assert live.count(">down<") == 2
    runtime = page[page.index('aria-label="Ledger and runtime"') :]
    assert runtime.count(">down<") == 2

    # A second round of a still-unhealthy deployment tells its people once, not twice.
    told = Notification.objects.filter(
        key__startswith=f"deployment:{deployments['unhealthy'].pk}:down"
    )
    assert told.exists()
    count = told.count()
    tasks.poll_health()
    assert told.count() == count
    assert UnauthorisedChange.objects.count() == 1


def test_expired_windows_are_closed(envs, ci, clock, requester, peer, monkeypatch):
    build = build_register("churn", "2.0")
    change = file_change(
        model_version=build,
        environment=envs["test"],
        requester=requester,
        signers=[peer],
        window_start=timezone.now() + timedelta(hours=1),
        hours=2,
    )
    assert change.state == State.APPROVED
    assert tasks.expire_change_requests() == 0
    later = timezone.now() + timedelta(hours=4)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert tasks.expire_change_requests() == 1
    change.refresh_from_db()
    assert change.state == State.EXPIRED


def test_overdue_retrospective_escalates_once_with_a_controlled_clock(
    envs, ci, clock, requester, change_manager, prod_signers
):
    emergency = emergency_deployed(
        requester=requester,
        authoriser=change_manager,
        pipeline=ci.account,
        model_version=build_register("payments", "9.9"),
        environment=envs["prod"],
        clock=clock,
    )
    due = emergency.retrospective_due_at
    assert emergency.state == State.RETRO_REVIEW

    assert tasks.escalate_retrospectives((due - timedelta(hours=24)).isoformat()) == 0
    assert tasks.escalate_retrospectives((due - timedelta(hours=6)).isoformat()) == 1
    soon = Notification.objects.get(recipient=change_manager, key__endswith="due-soon")
    assert "due soon" in soon.subject

    assert tasks.escalate_retrospectives((due + timedelta(minutes=1)).isoformat()) == 1
    overdue = Notification.objects.get(recipient=change_manager, key__endswith="overdue")
    assert "OVERDUE" in overdue.subject
    assert "change manager" in overdue.reason
    escalations = AuditEvent.objects.filter(action="change_request.retrospective_escalated")
    assert escalations.count() == 1

    assert tasks.escalate_retrospectives((due + timedelta(hours=5)).isoformat()) == 0
    assert escalations.count() == 1


def test_a_failed_deployment_tells_the_owner_team(envs, ci):
    build = build_register("scoring", "1.0")
    started, _ = deployment_start(actor=ci.account, environment=envs["dev"], model_version=build)
    failed = deployment_record_result(
        actor=ci.account, deployment=started, status="failed", detail="Readiness probe failed."
    )
    told = Notification.objects.filter(key=f"deployment:{failed.pk}:failed")
    reasons = {n.recipient.username: n.reason for n in told}
    assert set(reasons) == {"requester", "peer"}
    assert "owns scoring" in reasons["requester"]
    assert all("Readiness probe failed." in n.body for n in told)
