"""`GET /metrics` (docs/operations.md, Metrics): the scrape parsed as Prometheus parses it, with
the values that the records made through the services must give; who may read it; and the cost of
one scrape, which must not grow with the history."""

import importlib
import re
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from audit.models import AuditVerification
from audit.services import audit_verify
from organisation import services as organisation
from portal.models import Notification, Scope
from portal.notifications import notification_deliver, notify
from releases.builders import deploy, file_change, sign
from releases.models import (
    ChangeRequest,
    GateDecision,
    GateTally,
    ReconciliationFinding,
    SignOff,
    UnauthorisedChange,
)
from releases.services.change_requests import change_request_edit, sign_off_withdraw
from releases.services.deployments import GateDenied, deployment_start, health_check_record
from releases.services.reconciliation import reconcile
from releases.states import State

pytestmark = pytest.mark.django_db

Samples = dict[tuple[str, frozenset], float]


@pytest.fixture
def scraper(service_caller):
    return service_caller(Scope.METRICS_READ).client()


def scrape(client) -> tuple[Samples, dict[str, str]]:
    """Every sample by (name, labels), and every family's type, as Prometheus reads them."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        types[family.name] = family.type
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return samples, types


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def named(samples: Samples, name: str) -> dict[frozenset, float]:
    return {labels: v for (sample, labels), v in samples.items() if sample == name}


def ask_gate(caller, environment: str, version) -> dict:
    response = caller.client().post(
        "/api/v1/gate/",
        {"environment": environment, "model": version.model.name, "version": version.version},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()


# -- the gate ----------------------------------------------------------------------------------


def test_gate_decisions_are_counted_by_answer_and_denials_by_code(
    scraper, service_caller, envs, builds, ci, clock
):
    gate = service_caller(Scope.GATE_READ)
    assert ask_gate(gate, "dev", builds["1.0"])["allowed"]
    assert ask_gate(gate, "dev", builds["1.1"])["allowed"]
    denied = ask_gate(gate, "prod", builds["1.0"])
    assert not denied["allowed"]
    unknown = ask_gate(gate, "staging", builds["1.0"])
    # A deployment start asks the gate too, under its own purpose.
    with pytest.raises(GateDenied, match="no_approved_change"):
        deployment_start(actor=ci.account, environment=envs["prod"], model_version=builds["1.2"])

    samples, types = scrape(scraper)
    decisions = "gatehouse_gate_decisions_total"
    assert types["gatehouse_gate_decisions"] == "counter"
    assert value(samples, decisions, environment="dev", purpose="check", answer="allow") == 2
    assert value(samples, decisions, environment="prod", purpose="check", answer="deny") == 1
    # A name that matches no environment is counted under none, not under the caller's words.
    assert value(samples, decisions, environment="", purpose="check", answer="deny") == 1
    assert value(samples, decisions, environment="prod", purpose="deployment", answer="deny") == 1
    assert sum(named(samples, decisions).values()) == 5

    reasons = "gatehouse_gate_denial_reasons_total"
    prod_codes = {reason["code"] for reason in denied["reasons"]}
    assert "no_approved_change" in prod_codes
    for code in prod_codes:
        assert value(samples, reasons, environment="prod", purpose="check", code=code) == 1
        assert value(samples, reasons, environment="prod", purpose="deployment", code=code) == 1
    assert [reason["code"] for reason in unknown["reasons"]] == ["unknown_environment"]
    assert value(samples, reasons, environment="", purpose="check", code="unknown_environment")
    assert sum(named(samples, reasons).values()) == 2 * len(prod_codes) + 1


def test_the_totals_agree_with_the_recorded_decisions_and_the_migration_rebuilds_them(
    service_caller, envs, builds, ci
):
    gate = service_caller(Scope.GATE_READ)
    for environment in ("dev", "prod", "prod", "test", "nowhere"):
        ask_gate(gate, environment, builds["1.0"])
    with pytest.raises(GateDenied, match="no_approved_change"):
        deployment_start(actor=ci.account, environment=envs["test"], model_version=builds["1.1"])
    assert GateDecision.objects.count() == 6
    kept = set(GateTally.objects.values_list("environment", "purpose", "allowed", "code", "count"))

    GateTally.objects.all().delete()
    migration = importlib.import_module("releases.migrations.0014_gate_tallies")
    migration.count_recorded_decisions(apps, None)
    rebuilt = set(
        GateTally.objects.values_list("environment", "purpose", "allowed", "code", "count")
    )
    assert rebuilt == kept
    assert {row[4] for row in kept if row[3] == "" and row[0] == "prod"} == {2}


# -- the release records -------------------------------------------------------------------------


def test_deployments_by_environment_kind_and_status_with_zeros(scraper, envs, builds, ci, clock):
    deploy(actor=ci.account, environment=envs["dev"], model_version=builds["1.0"], clock=clock)
    deploy(
        actor=ci.account,
        environment=envs["dev"],
        model_version=builds["1.1"],
        clock=clock,
        succeed=False,
    )
    deployment_start(actor=ci.account, environment=envs["dev"], model_version=builds["1.2"])

    samples, types = scrape(scraper)
    name = "gatehouse_deployments"
    assert types[name] == "gauge"
    assert value(samples, name, environment="dev", kind="deploy", status="succeeded") == 1
    assert value(samples, name, environment="dev", kind="deploy", status="failed") == 1
    assert value(samples, name, environment="dev", kind="deploy", status="started") == 1
    assert value(samples, name, environment="dev", kind="rollback", status="succeeded") == 0
    # Every environment, kind and status is present, zero or not, so a rule can watch it.
    assert value(samples, name, environment="prod", kind="deploy", status="failed") == 0
    assert len(named(samples, name)) == 3 * 2 * 4


def test_change_requests_by_state_open_flags_and_findings(
    scraper, envs, builds, ci, clock, requester, peer
):
    draft_to_be = file_change(
        model_version=builds["1.0"], environment=envs["prod"], requester=requester
    )
    file_change(
        model_version=builds["1.1"], environment=envs["test"], requester=requester, signers=[peer]
    )
    live = deploy(
        actor=ci.account, environment=envs["dev"], model_version=builds["1.0"], clock=clock
    )
    health_check_record(
        deployment=live, ok=True, reported_sha256=builds["1.2"].artifact_sha256, now=clock.now
    )
    # A state set by SQL, which the trail does not explain.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE releases_changerequest SET state = %s WHERE id = %s",
            [State.APPROVED, draft_to_be.pk],
        )
    reconcile(actor=None)
    assert ReconciliationFinding.objects.filter(resolved_at__isnull=True).exists()

    samples, _ = scrape(scraper)
    states = "gatehouse_change_requests"
    assert value(samples, states, environment="prod", state="approved") == 1
    assert value(samples, states, environment="prod", state="in_review") == 0
    assert value(samples, states, environment="test", state="approved") == 1
    assert value(samples, states, environment="dev", state="draft") == 0
    assert len(named(samples, states)) == 3 * len(State.values)
    flags = "gatehouse_unauthorised_changes_open"
    assert value(samples, flags, environment="dev") == 1
    assert value(samples, flags, environment="prod") == 0
    findings = ReconciliationFinding.objects.filter(resolved_at__isnull=True).count()
    assert value(samples, "gatehouse_reconciliation_findings_open") == findings

    UnauthorisedChange.objects.update(reviewed_at=timezone.now())
    samples, _ = scrape(scraper)
    assert value(samples, flags, environment="dev") == 0


# -- sign-off latency ------------------------------------------------------------------------


def test_sign_off_latency_from_submission_to_each_standing_approval(
    scraper,
    envs,
    version,
    requester,
    peer,
    model_risk_approver,
    release_approver,
    platform_approver,
):
    submitted = timezone.now().replace(microsecond=0) - timedelta(days=3)
    change = file_change(
        model_version=version, environment=envs["prod"], requester=requester, now=submitted
    )
    sign(peer, change, now=submitted + timedelta(minutes=10))  # a peer review: not counted
    sign(model_risk_approver, change, now=submitted + timedelta(minutes=30))
    sign(release_approver, change, now=submitted + timedelta(hours=5))
    sign(platform_approver, change, now=submitted + timedelta(days=2))
    # Long ago: outside the 30 days.
    old = submitted - timedelta(days=40)
    old_change = file_change(
        model_version=version,
        environment=envs["prod"],
        requester=requester,
        now=old,
        signers=[peer, model_risk_approver],
    )
    assert old_change.sign_offs.count() == 2

    samples, types = scrape(scraper)
    name = "gatehouse_sign_off_latency_seconds"
    assert types[name] == "histogram"
    assert types[f"{name}_gcount"] == types[f"{name}_gsum"] == "gauge"

    def bucket(team: str, le: str) -> float | None:
        return value(samples, f"{name}_bucket", environment="prod", team=team, le=le)

    assert bucket("model-risk", "900.0") == 0
    assert bucket("model-risk", "3600.0") == 1
    assert bucket("release-management", "14400.0") == 0
    assert bucket("release-management", "28800.0") == 1
    assert bucket("platform-operations", "86400.0") == 0
    assert bucket("platform-operations", "172800.0") == 1
    assert bucket("platform-operations", "+Inf") == 1
    assert value(samples, f"{name}_gsum", environment="prod", team="model-risk") == 1800
    assert value(samples, f"{name}_gcount", environment="prod", team="release-management") == 1
    assert not [labels for labels in named(samples, f"{name}_gcount") if ("team", "") in labels]

    # The signer withdraws: a sign-off that no longer stands is no longer measured.
    standing = SignOff.objects.get(change_request=change, signer=platform_approver)
    sign_off_withdraw(actor=platform_approver, sign_off=standing, reason="Wrong ticket.")
    samples, _ = scrape(scraper)
    assert value(samples, f"{name}_gcount", environment="prod", team="platform-operations") is None
    assert value(samples, f"{name}_gcount", environment="prod", team="model-risk") == 1

    # An edit voids them all.
    change.refresh_from_db()
    window = timezone.now() + timedelta(days=2)
    change_request_edit(
        actor=requester,
        change_request=change,
        window_start=window,
        window_end=window + timedelta(hours=4),
    )
    samples, _ = scrape(scraper)
    assert named(samples, f"{name}_gcount") == {}


# -- the notification queue ----------------------------------------------------------------


def test_notification_queue_depth_and_age_of_the_oldest(scraper, requester, peer, auditor):
    samples, _ = scrape(scraper)
    assert value(samples, "gatehouse_notifications_undelivered") == 0
    assert value(samples, "gatehouse_notifications_oldest_undelivered_age_seconds") == 0

    first = notify(recipients=[requester], key="a", subject="A", body="", reason="test")[0]
    notify(recipients=[peer, auditor], key="b", subject="B", body="", reason="test")
    Notification.objects.filter(pk=first.pk).update(
        created_at=timezone.now() - timedelta(minutes=20)
    )
    samples, _ = scrape(scraper)
    assert value(samples, "gatehouse_notifications_undelivered") == 3
    age = value(samples, "gatehouse_notifications_oldest_undelivered_age_seconds")
    assert 20 * 60 <= age < 21 * 60

    notification_deliver(notification_id=first.pk)
    samples, _ = scrape(scraper)
    assert value(samples, "gatehouse_notifications_undelivered") == 2
    assert value(samples, "gatehouse_notifications_oldest_undelivered_age_seconds") < 60


# -- the audit verification ------------------------------------------------------------------


def test_last_audit_verification_time_and_result(scraper, org):
    samples, _ = scrape(scraper)
    assert value(samples, "gatehouse_audit_verification_finished_timestamp_seconds") == 0
    assert value(samples, "gatehouse_audit_verification_ok") is None

    run, report = audit_verify(actor=None)
    assert report.ok
    samples, _ = scrape(scraper)
    finished = value(samples, "gatehouse_audit_verification_finished_timestamp_seconds")
    assert finished == pytest.approx(run.finished_at.timestamp())
    assert value(samples, "gatehouse_audit_verification_ok") == 1

    AuditVerification.objects.create(
        started_at=run.finished_at + timedelta(hours=1),
        finished_at=run.finished_at + timedelta(hours=1, seconds=5),
        run_by="system",
        ok=False,
        events_checked=10,
        checkpoints_checked=0,
        tip_seq=10,
        first_bad_seq=7,
        problem="The hash of event 7 does not match its content.",
        events_per_second=2.0,
    )
    samples, _ = scrape(scraper)
    assert value(samples, "gatehouse_audit_verification_ok") == 0
    later = value(samples, "gatehouse_audit_verification_finished_timestamp_seconds")
    assert later == pytest.approx(run.finished_at.timestamp() + 3605)


# -- the format ----------------------------------------------------------------------------


def test_every_family_is_named_and_described(scraper, envs):
    response = scraper.get("/metrics")
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.content.decode()
    families = list(text_string_to_metric_families(text))
    assert families
    for family in families:
        assert family.name.startswith("gatehouse_"), family.name
        assert family.documentation, family.name
        assert f"# TYPE {family.name}" in text
    # Nothing of the process answering: every node must give the same figures.
    assert "process_" not in text and "python_" not in text


# -- who may read it ----------------------------------------------------------------------


def test_no_credentials_is_401_and_never_cached():
    response = Client().get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "no-store" in response["Cache-Control"]


def test_a_token_without_the_scope_is_403(service_caller):
    for scopes in ((Scope.AUDIT_READ,), tuple(s for s in Scope.values if s != "metrics:read")):
        response = service_caller(*scopes).client().get("/metrics")
        assert response.status_code == 403, scopes
        assert "metrics:read" in response.json()["detail"]


def test_a_revoked_or_disabled_token_is_refused(service_caller):
    caller = service_caller(Scope.METRICS_READ)
    organisation.service_token_revoke(actor=None, token=caller.account.tokens.get())
    assert caller.client().get("/metrics").status_code == 401
    other = service_caller(Scope.METRICS_READ)
    organisation.service_account_update(
        actor=None, service_account=other.account, scopes=other.account.scopes, is_active=False
    )
    assert other.client().get("/metrics").status_code == 401


def test_the_documented_service_account_reads_it(org):
    out = StringIO()
    call_command(
        "create_service_account",
        "prometheus",
        team="platform-operations",
        scopes="metrics:read",
        stdout=out,
    )
    token = out.getvalue().strip().splitlines()[-1]
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert b"# TYPE gatehouse_deployments gauge" in response.content


def test_the_scope_reads_it_uncached(scraper):
    response = scraper.get("/metrics")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_only_superusers_read_it_in_the_browser(login, administrator, auditor, change_manager):
    assert administrator.is_superuser
    assert login(administrator).get("/metrics").status_code == 200
    for person in (auditor, change_manager):
        assert login(person).get("/metrics").status_code == 403
    staff = get_user_model().objects.create_user("staff-only", password="x-9Lq!v2", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert client.get("/metrics").status_code == 403


def test_only_get(scraper):
    assert scraper.post("/metrics").status_code == 405


# -- the cost of a scrape -----------------------------------------------------------------


def history(envs, builds, ci, clock, requester, peer, service_caller, times: int) -> None:
    """`times` of each kind of record a scrape reads."""
    gate = service_caller(Scope.GATE_READ)
    users = [requester, peer]
    for n in range(times):
        ask_gate(gate, ("dev", "test", "prod", "nowhere")[n % 4], builds["1.0"])
        deploy(
            actor=ci.account,
            environment=envs["dev"],
            model_version=builds[("1.0", "1.1", "1.2")[n % 3]],
            clock=clock,
            succeed=n % 2 == 0,
        )
        file_change(
            model_version=builds["1.1"],
            environment=envs["test"],
            requester=requester,
            signers=[peer] if n % 2 else [],
        )
        notify(recipients=users, key=f"n{n}", subject="S", body="", reason="test")


def test_one_scrape_costs_the_same_queries_however_long_the_history(
    scraper, envs, builds, ci, clock, requester, peer, service_caller, django_assert_num_queries
):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            scrape(scraper)
        return len(captured)

    history(envs, builds, ci, clock, requester, peer, service_caller, times=1)
    small = queries()
    history(envs, builds, ci, clock, requester, peer, service_caller, times=12)
    assert ChangeRequest.objects.count() == 13
    # The token's lookup, then nine reads: environments, the gate's totals, deployments, change
    # requests, sign-offs, the notification queue, the verification, flags and findings.
    with django_assert_num_queries(small):
        scrape(scraper)
    assert small == 10


# -- the documentation ---------------------------------------------------------------------


def test_the_documented_series_and_alert_rules_name_what_the_scrape_gives(
    scraper, service_caller, envs, builds
):
    """docs/operations.md lists every series, and its alert rules (checked with `promtool check
    rules` when written) name only series that exist."""
    ask_gate(service_caller(Scope.GATE_READ), "prod", builds["1.0"])
    audit_verify(actor=None)
    samples, types = scrape(scraper)
    exported = {name for name, _ in samples} | set(types)
    text = (Path(settings.BASE_DIR) / "docs" / "operations.md").read_text()
    section = text[text.index("## Metrics") :]
    table = set(re.findall(r"^\| `(gatehouse_\w+)`", section, re.MULTILINE))
    families = {
        f"{name}_total" if kind == "counter" else name
        for name, kind in types.items()
        if not name.endswith(("_gcount", "_gsum"))
    }
    assert table == families
    rules = yaml.safe_load(re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)[1])
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    named_in_rules = {name for expr in expressions for name in re.findall(r"gatehouse_\w+", expr)}
    assert named_in_rules - exported == set()
    assert {"gatehouse_notifications_oldest_undelivered_age_seconds"} <= named_in_rules
