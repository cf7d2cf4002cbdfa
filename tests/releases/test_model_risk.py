"""Issue 16, model risk: the inventory entry is audited and kept by the model's owners and Model
Risk; a validation is concluded by an independent validator with an electronic signature; and
where the policy asks for it the gate refuses a build no current, unrejected validation covers,
or while a high finding is overdue. A retired model goes nowhere."""

import io
from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from organisation.demo import DEMO_PASSWORD
from organisation.services import membership_set
from portal.exceptions import Conflict, RuleDenied
from registry.builders import build_register
from registry.model_risk import (
    add_months,
    finding_close,
    model_inventory_update,
    validation_conclude,
)
from registry.models import LifecycleStatus, Validation
from releases.builders import file_change, sign
from releases.services import policy
from releases.services.gate import gate_evaluate

pytestmark = pytest.mark.django_db


def conclude(validator, build, outcome="approved", **fields):
    return validation_conclude(
        actor=validator,
        model=build.model,
        versions=[build],
        scope="Conceptual soundness, back-testing on 2026 Q3, stability.",
        outcome=outcome,
        password=fields.pop("password", DEMO_PASSWORD),
        **fields,
    )


def codes(build, **when) -> list[str]:
    answer = gate_evaluate(environment="dev", model=build.model.name, version=build.version, **when)
    return [reason.code for reason in answer.reasons]


def test_the_inventory_entry_is_kept_by_its_owners_and_audited(
    mirrored_builds, requester, platform_approver, model_risk_approver, ci
):
    model = mirrored_builds["2.0"].model
    model_inventory_update(
        actor=requester,
        model=model,
        purpose="Score card-not-present fraud.",
        prohibited_uses="Credit decisions.",
        lifecycle_status=LifecycleStatus.IN_VALIDATION,
        ai_act_high_risk=False,
    )
    with pytest.raises(RuleDenied) as refused:
        model_inventory_update(actor=requester, model=model, risk_tier=3)
    assert refused.value.code == "model_risk_field"  # owners do not lower their own tier
    model_inventory_update(
        actor=model_risk_approver, model=model, model_risk_owner=model_risk_approver.username
    )
    first, second = AuditEvent.objects.filter(action="model.inventory_updated").order_by("seq")
    assert first.data["changes"]["lifecycle_status"] == {
        "before": "in_development",
        "after": "in_validation",
    }
    assert second.data["changes"]["model_risk_owner"]["after"] == "risk"

    for outsider in (platform_approver, ci.account):
        with pytest.raises(RuleDenied) as refused:
            model_inventory_update(actor=outsider, model=model, purpose="Something else.")
        assert refused.value.code in ("not_inventory_editor", "people_only")
    with pytest.raises(ValidationError):
        model_inventory_update(actor=requester, model=model, upstream_models=["fraud-score"])
    assert AuditEvent.objects.filter(action="model.inventory_updated").count() == 2


def test_only_an_independent_model_risk_validator_concludes_with_a_signature(
    mirrored_builds, requester, peer, model_risk_approver, org
):
    build = mirrored_builds["2.0"]
    with pytest.raises(RuleDenied) as refused:
        conclude(peer, build)
    assert refused.value.code == "not_model_risk"
    with pytest.raises(RuleDenied) as refused:
        conclude(model_risk_approver, mirrored_builds["2.1"])
    assert refused.value.code == "validator_authored_commit"
    with pytest.raises(RuleDenied) as refused:
        conclude(model_risk_approver, build, password="not the password")
    assert refused.value.code == "reauth_failed"
    membership_set(
        actor=None, user=model_risk_approver, team=org["data-science"], is_approver=False
    )
    with pytest.raises(RuleDenied) as refused:
        conclude(model_risk_approver, build)
    assert refused.value.code == "validator_not_independent"
    assert not Validation.objects.exists()


def test_a_validation_lasts_as_long_as_the_tier_says(mirrored_builds, model_risk_approver):
    build = mirrored_builds["2.0"]
    validation = conclude(model_risk_approver, build)
    assert validation.valid_until == add_months(validation.concluded_at, 24)  # tier 2
    assert validation.meaning.startswith("I conclude the validation of fraud-score 2.0")
    build.model.refresh_from_db()
    assert build.model.next_validation_due == validation.valid_until.date()
    assert build.model.lifecycle_status == LifecycleStatus.APPROVED
    event = AuditEvent.objects.get(action="validation.concluded")
    assert event.data["reauthenticated"] is True and event.data["versions"] == ["2.0"]
    assert add_months(validation.concluded_at.replace(month=1, day=31), 1).day in (28, 29)


def test_the_gate_asks_for_a_current_unrejected_validation(
    mirrored_builds, dev_needs_validation, model_risk_approver
):
    build = mirrored_builds["2.0"]
    assert codes(build) == ["validation_missing"]

    validation = conclude(model_risk_approver, build)
    assert codes(build) == []
    after_expiry = validation.valid_until + timedelta(days=1)
    assert codes(build, now=after_expiry) == ["validation_expired"]

    conclude(model_risk_approver, build, outcome="rejected")
    assert codes(build) == ["validation_rejected"]


def test_an_overdue_high_finding_blocks_until_it_is_remediated(
    mirrored_builds, dev_needs_validation, model_risk_approver, requester
):
    build = mirrored_builds["2.0"]
    due = date.today() + timedelta(days=10)
    validation = conclude(
        model_risk_approver,
        build,
        outcome="conditions",
        findings=[
            {
                "title": "Drift monitor",
                "severity": "high",
                "owner": requester,
                "remediation_due": due,
            },
            {"title": "Docs", "severity": "low", "owner": requester, "remediation_due": due},
        ],
    )
    assert codes(build) == []
    later = validation.concluded_at + timedelta(days=11)
    assert codes(build, now=later) == ["findings_overdue"]

    high = validation.findings.get(severity="high")
    with pytest.raises(RuleDenied):
        finding_close(actor=requester, finding=high, status="accepted", note="We accept.")
    finding_close(actor=requester, finding=high, status="remediated", note="Monitor deployed.")
    assert codes(build, now=later) == []
    assert AuditEvent.objects.filter(action="finding.closed").count() == 1


def test_a_retired_model_is_refused_everywhere_and_only_a_change_retires_it(
    mirrored_builds, envs, requester
):
    from registry.model_risk import model_retire

    build = mirrored_builds["2.0"]
    with pytest.raises(RuleDenied) as refused:
        model_inventory_update(
            actor=requester, model=build.model, lifecycle_status=LifecycleStatus.RETIRED
        )
    assert refused.value.code == "retire_by_change"
    model_retire(actor=requester, model=build.model, change_request="CR-1")
    assert codes(build) == ["model_retired"]
    with pytest.raises(RuleDenied) as refused:
        model_inventory_update(
            actor=requester, model=build.model, lifecycle_status=LifecycleStatus.IN_PRODUCTION
        )
    assert refused.value.code == "model_retired"


def test_the_inventory_page_filters_and_exports_what_a_regulator_asks_for(
    mirrored_builds, requester, login, auditor
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from openpyxl import load_workbook

    model = mirrored_builds["2.0"].model
    model_inventory_update(
        actor=requester,
        model=model,
        purpose="=HYPERLINK(1) scores fraud",
        lifecycle_status=LifecycleStatus.IN_PRODUCTION,
        upstream_datasets=["transactions"],
    )
    elsewhere = "https://git.example.com/data-science/screening"
    build_register("aml-screening", "1.0", repository=elsewhere)
    client = login(auditor)

    def page(**query):
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/registry/inventory/", query)
        assert response.status_code == 200
        return response.content.decode(), len(queries)

    few_html, few = page()
    assert "fraud-score" in few_html and "aml-screening" in few_html
    filtered, _ = page(lifecycle_status="in_production")
    assert "fraud-score" in filtered and "aml-screening" not in filtered
    for number in range(20):
        build_register(f"extra-{number}", "1.0", repository=elsewhere)
    _, many = page()
    assert many == few  # the same queries for 2 models as for 22

    csv_text = client.get("/registry/inventory.csv", {"lifecycle_status": "in_production"})
    lines = csv_text.content.decode().splitlines()
    assert lines[0].startswith("model,owner team,risk tier")
    assert len(lines) == 2 and "'=HYPERLINK(1) scores fraud" in lines[1]
    xlsx = client.get("/registry/inventory.xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    names = [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert "fraud-score" in names and len(names) == 22


def test_model_risk_signs_seeing_the_validation_and_its_findings(
    mirrored_builds, envs, requester, peer, model_risk_approver, login, clock
):
    build = mirrored_builds["2.0"]
    change = file_change(
        requester=requester,
        model_version=build,
        environment=envs["prod"],
        signers=[peer],
        window_start=clock.now,
    )
    page = login(model_risk_approver).get(f"/releases/change-requests/{change.number}/")
    assert "No Model Risk validation covers this build." in page.content.decode()
    conclude(
        model_risk_approver,
        build,
        outcome="conditions",
        findings=[
            {
                "title": "Drift monitor missing",
                "severity": "high",
                "owner": requester,
                "remediation_due": date.today() + timedelta(days=30),
            }
        ],
    )
    html = login(model_risk_approver).get(f"/releases/change-requests/{change.number}/")
    html = html.content.decode()
    assert 'data-testid="validation-evidence"' in html
    assert "Approved with conditions by Rita Kovacs" in html
    assert "Drift monitor missing" in html and "High, open" in html


def test_the_api_reads_the_inventory_and_validations_and_owners_write(
    mirrored_builds, requester, model_risk_approver, login, ci
):
    build = mirrored_builds["2.0"]
    conclude(model_risk_approver, build)
    url = "/api/v1/models/fraud-score/inventory/"
    client = login(requester)
    answer = client.post(
        url,
        {"lifecycle_status": "in_production", "upstream_datasets": ["transactions"]},
        content_type="application/json",
    )
    assert answer.status_code == 200
    assert answer.json()["lifecycle_status"] == "in_production"
    assert ci.client().get(url).json()["upstream_datasets"] == ["transactions"]
    refused = ci.client().post(url, {"purpose": "x"}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "people_only"
    unknown = client.post(url, {"colour": "red"}, content_type="application/json")
    assert unknown.status_code == 400 and "colour" in unknown.json()

    validations = ci.client().get("/api/v1/models/fraud-score/validations/").json()
    assert [(v["outcome"], v["versions"], v["validator"]) for v in validations] == [
        ("approved", ["2.0"], "risk")
    ]


def test_model_risk_concludes_a_validation_from_the_model_page(
    mirrored_builds, model_risk_approver, requester, login
):
    build = mirrored_builds["2.0"]
    client = login(requester)
    assert (
        "Conclude a validation" not in client.get("/registry/models/fraud-score/").content.decode()
    )
    client = login(model_risk_approver)
    page = client.get("/registry/models/fraud-score/").content.decode()
    assert "Conclude a validation" in page and "No validation yet." in page
    form = {
        "versions": [build.pk],
        "scope": "Back-testing on 2026 Q3.",
        "outcome": "conditions",
        "finding_title": "Monitor drift weekly",
        "finding_severity": "medium",
        "finding_owner": requester.username,
        "finding_due": "2027-03-01",
        "password": "wrong",
    }
    refused = client.post("/registry/models/fraud-score/validations/", form, follow=True)
    assert "The password does not match" in refused.content.decode()
    assert not Validation.objects.exists()
    signed = client.post(
        "/registry/models/fraud-score/validations/",
        {**form, "password": DEMO_PASSWORD},
        follow=True,
    )
    html = signed.content.decode()
    assert "Validation of fraud-score concluded and signed." in html
    assert "Approved with conditions" in html and "Monitor drift weekly" in html
    assert Validation.objects.get().findings.get().owner == requester


def test_reminders_come_60_and_30_days_ahead_and_escalate_once_lapsed(
    mirrored_builds, requester, model_risk_approver, login
):
    from portal.models import Notification
    from registry.model_risk import validation_reminders_send

    model = mirrored_builds["2.0"].model
    due = date(2027, 6, 30)
    model_inventory_update(
        actor=model_risk_approver,
        model=model,
        model_risk_owner=model_risk_approver.username,
        next_validation_due=due,
    )
    assert validation_reminders_send(today=due - timedelta(days=61)) == 0
    assert validation_reminders_send(today=due - timedelta(days=60)) == 1
    assert validation_reminders_send(today=due - timedelta(days=59)) == 0  # told once
    assert validation_reminders_send(today=due - timedelta(days=30)) == 1
    assert validation_reminders_send(today=due + timedelta(days=1)) >= 1
    keys = sorted(
        Notification.objects.filter(recipient=model_risk_approver).values_list("key", flat=True)
    )
    assert [key.rsplit(":", 1)[1] for key in keys] == ["30", "60", "lapsed"]


def test_model_risks_dashboard_shows_the_validations_falling_due(
    mirrored_builds, requester, model_risk_approver, login
):
    model = mirrored_builds["2.0"].model
    model_inventory_update(
        actor=model_risk_approver,
        model=model,
        next_validation_due=date.today() + timedelta(days=20),
    )
    page = login(model_risk_approver).get("/").content.decode()
    assert 'data-testid="validations-due"' in page and "in 20 days" in page
    assert 'data-testid="validations-due"' not in login(requester).get("/").content.decode()


def test_a_validation_report_is_kept_by_its_digest_and_never_handed_out_altered(
    mirrored_builds, model_risk_approver, requester, login, settings, tmp_path
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from registry.models import Document

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.GATEHOUSE_DOCUMENT_MAX_BYTES = 2048
    build = mirrored_builds["2.0"]
    client = login(model_risk_approver)
    form = {
        "versions": [build.pk],
        "scope": "Full validation.",
        "outcome": "approved",
        "password": DEMO_PASSWORD,
    }
    url = "/registry/models/fraud-score/validations/"
    not_pdf = SimpleUploadedFile("report.pdf", b"MZ\x90\x00 not a pdf")
    refused = client.post(url, {**form, "report": not_pdf}, follow=True).content.decode()
    assert "not a PDF" in refused and not Validation.objects.exists()
    too_big = SimpleUploadedFile("report.md", b"x" * 4096)
    assert (
        "over the limit of 2,048 bytes"
        in client.post(url, {**form, "report": too_big}, follow=True).content.decode()
    )
    assert not Validation.objects.exists()

    pdf = b"%PDF-1.7\n% a validation report\n"
    client.post(url, {**form, "report": SimpleUploadedFile("report.pdf", pdf)})
    document = Document.objects.get()
    assert document.validation == Validation.objects.get()
    event = AuditEvent.objects.get(action="validation.concluded")
    assert event.data["report"]["sha256"] == document.sha256
    download = login(requester).get(f"/registry/documents/{document.pk}/")
    assert download.status_code == 200 and download.content == pdf
    assert download["X-Content-SHA256"] == document.sha256
    with pytest.raises(ValueError):
        document.save()

    (settings.MEDIA_ROOT / document.file.name).write_bytes(pdf + b"edited")
    altered = login(requester).get(f"/registry/documents/{document.pk}/")
    assert altered.status_code == 409 and "no longer matches the digest" in altered.content.decode()


def test_a_retirement_is_a_change_approved_like_any_other_then_the_gate_refuses_the_model(
    mirrored_builds, envs, requester, peer, prod_signers, login, clock
):
    build = mirrored_builds["2.0"]
    page = login(requester).get("/releases/change-requests/new/").content.decode()
    assert "This change retires the model" in page
    with pytest.raises(Conflict) as refused:
        file_change(
            requester=requester,
            model_version=build,
            environment=envs["test"],
            signers=[],
            window_start=clock.now,
            retires_model=True,
        )
    assert refused.value.code == "retirement_needs_production"
    prod = envs["prod"]
    policy.environment_update(
        actor=None, environment=prod, rank=prod.rank, description="", is_production=True
    )
    retirement = file_change(
        requester=requester,
        model_version=build,
        environment=prod,
        signers=prod_signers[:-1],
        window_start=clock.now,
        retires_model=True,
    )
    assert codes(build) == []  # dev: not retired yet, and dev needs no change
    html = login(requester).get(f"/releases/change-requests/{retirement.number}/").content.decode()
    assert 'data-testid="retirement"' in html
    sign(prod_signers[-1], retirement)
    build.model.refresh_from_db()
    assert build.model.lifecycle_status == LifecycleStatus.RETIRED
    retired = AuditEvent.objects.get(action="model.retired")
    assert retired.data["change_request"] == retirement.number
    assert codes(build) == ["model_retired"]


def test_the_model_page_shows_its_inventory_history_and_the_panel_shows_the_card(
    mirrored_builds, envs, requester, peer, model_risk_approver, login, clock
):
    build = mirrored_builds["2.0"]
    model_inventory_update(
        actor=requester, model=build.model, lifecycle_status=LifecycleStatus.IN_VALIDATION
    )
    conclude(model_risk_approver, build)
    page = login(requester).get("/registry/models/fraud-score/").content.decode()
    assert 'data-testid="model-history"' in page
    assert "model.inventory_updated" in page and "in_development → in_validation" in page
    assert "validation.concluded" in page

    carded = build_register(
        "fraud-score",
        "2.2",
        commit_sha=build.commit_sha,
        build_id="pipeline-2.2",
        artifact_sha256="c" * 64,
        model_card={"purpose": "Score card-not-present fraud.", "limitations": "Not for credit."},
    )
    change = file_change(
        requester=requester,
        model_version=carded,
        environment=envs["prod"],
        signers=[peer],
        window_start=clock.now,
    )
    html = login(model_risk_approver).get(f"/releases/change-requests/{change.number}/")
    assert 'data-testid="model-card-summary"' in html.content.decode()
    assert "Not for credit." in html.content.decode()


def test_the_api_closes_a_finding_for_its_owner_and_refuses_the_owners_token(
    mirrored_builds, model_risk_approver, requester, login, ci
):
    build = mirrored_builds["2.0"]
    validation = conclude(
        model_risk_approver,
        build,
        outcome="conditions",
        findings=[
            {
                "title": "Drift monitor",
                "severity": "high",
                "owner": requester,
                "remediation_due": date.today(),
            }
        ],
    )
    finding = validation.findings.get()
    url = f"/api/v1/models/fraud-score/findings/{finding.pk}/close/"
    body = {"status": "remediated", "note": "Monitor deployed."}
    # The pipeline of Data Science, which owns the model, does not act for Model Risk.
    assert ci.client().post(url, body, format="json").json()["code"] == "token_wrong_team"
    client = login(requester)
    accepted = client.post(url, {**body, "status": "accepted"}, content_type="application/json")
    assert accepted.status_code == 403
    closed = client.post(url, body, content_type="application/json")
    assert closed.status_code == 200 and closed.json()["status"] == "remediated"
    other = client.post(
        "/api/v1/models/fraud-score/findings/999999/close/", body, content_type="application/json"
    )
    assert other.status_code == 404


def test_the_inventory_flags_a_model_in_production_whose_validation_lapsed_and_what_runs(
    mirrored_builds, envs, requester, model_risk_approver, auditor, login
):
    from releases.builders import deployment_row

    build = mirrored_builds["2.0"]
    model_inventory_update(
        actor=requester, model=build.model, lifecycle_status=LifecycleStatus.IN_PRODUCTION
    )
    model_inventory_update(
        actor=model_risk_approver,
        model=build.model,
        next_validation_due=date.today() - timedelta(days=3),
    )
    deployment_row(environment=envs["prod"], model_version=build)
    page = login(auditor).get("/registry/inventory/").content.decode()
    assert 'data-testid="lapsed"' in page and "live: 2.0 in prod" in page
