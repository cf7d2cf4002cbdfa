"""Issue 16 over REST: Model Risk's tokens (`validations:write`, acting for Model Risk and not
for the model's owners) and people open validations and record findings through the same
services as the pages; concluding stays the validator's signature in the browser
(`signature_in_browser`); a token marks a finding remediated, never accepts one. The inventory
list is cursor-paged."""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from organisation.demo import DEMO_PASSWORD
from organisation.services import membership_set
from portal.models import Notification, Scope
from registry.builders import build_register
from registry.model_risk import model_inventory_update
from registry.models import LifecycleStatus, RegisteredModel, Validation
from releases.services.gate import gate_evaluate
from tests.conftest import make_service_caller

pytestmark = pytest.mark.django_db

VALIDATIONS = "/api/v1/models/fraud-score/validations/"
SCOPE = "Conceptual soundness, back-testing on 2026 Q3, stability."


@pytest.fixture
def workbench(org):
    """Model Risk's own tool: a token of Model Risk that opens validations."""
    return make_service_caller(org["model-risk"], "risk-workbench", [Scope.VALIDATIONS_WRITE])


def codes(build) -> list[str]:
    answer = gate_evaluate(environment="dev", model=build.model.name, version=build.version)
    return [reason.code for reason in answer.reasons]


def open_for_risk(client, versions=("2.0",), **fields):
    body = {"versions": list(versions), "scope": SCOPE, "validator": "risk", **fields}
    return client.post(VALIDATIONS, body, format="json")


def finding_body(**fields) -> dict:
    return {
        "title": "No drift monitor on merchant features",
        "severity": "high",
        "owner": "requester",
        "remediation_due": (date.today() - timedelta(days=1)).isoformat(),
        **fields,
    }


def test_model_risks_token_opens_and_records_and_the_validator_signs_in_the_browser(
    mirrored_builds, dev_needs_validation, workbench, model_risk_approver, requester, login
):
    build = mirrored_builds["2.0"]
    opened = open_for_risk(workbench.client())
    assert opened.status_code == 201, opened.content
    validation = opened.json()
    assert validation["status"] == "open" and validation["outcome"] == ""
    assert validation["versions"] == ["2.0"] and validation["validator"] == "risk"
    assert validation["concluded_at"] is None and validation["valid_until"] is None
    event = AuditEvent.objects.get(action="validation.opened")
    assert event.actor_name == "risk-workbench" and event.data["validator"] == "risk"
    assert event.data["lifecycle_status"] == {"before": "in_development", "after": "in_validation"}
    assert Notification.objects.filter(recipient=model_risk_approver).count() == 1
    assert codes(build) == ["validation_missing"]  # open, it counts for nothing yet

    findings = f"{VALIDATIONS}{validation['id']}/findings/"
    high = workbench.client().post(findings, finding_body(), format="json")
    assert high.status_code == 201 and high.json()["status"] == "open"
    low = workbench.client().post(
        findings, finding_body(title="Thresholds undocumented", severity="low"), format="json"
    )
    assert low.status_code == 201
    assert AuditEvent.objects.filter(action="finding.recorded").count() == 2
    assert Notification.objects.filter(recipient=requester).count() == 2
    # A high finding past its date holds the model whatever the state of its validation.
    assert codes(build) == ["validation_missing", "findings_overdue"]

    conclude = f"{VALIDATIONS}{validation['id']}/conclude/"
    refused = workbench.client().post(conclude, {"outcome": "approved"}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "signature_in_browser"
    client = login(model_risk_approver)
    body = {"outcome": "approved", "password": DEMO_PASSWORD}
    refused = client.post(conclude, body, content_type="application/json")
    assert refused.status_code == 403 and refused.json()["code"] == "signature_in_browser"
    assert Validation.objects.get().is_open

    page = client.get("/registry/models/fraud-score/").content.decode()
    assert 'data-testid="validation-open"' in page and 'data-testid="conclude-opened"' in page
    signed = client.post(
        f"/registry/models/fraud-score/validations/{validation['id']}/conclude/",
        {"outcome": "conditions", "password": DEMO_PASSWORD},
        follow=True,
    )
    assert "Validation of fraud-score concluded and signed." in signed.content.decode()
    concluded = AuditEvent.objects.get(action="validation.concluded")
    assert concluded.actor_name == "risk" and concluded.data["reauthenticated"] is True
    assert [f["title"] for f in concluded.data["findings"]] == [
        "No drift monitor on merchant features",
        "Thresholds undocumented",
    ]
    assert codes(build) == ["findings_overdue"]

    late = workbench.client().post(findings, finding_body(title="Too late"), format="json")
    assert late.status_code == 409 and late.json()["code"] == "validation_concluded"

    close = "/api/v1/models/fraud-score/findings/{}/close/"
    accepted = workbench.client().post(
        close.format(low.json()["id"]), {"status": "accepted", "note": "Low."}, format="json"
    )
    assert accepted.status_code == 403 and accepted.json()["code"] == "people_only"
    remediated = workbench.client().post(
        close.format(high.json()["id"]),
        {"status": "remediated", "note": "Drift monitor verified in production."},
        format="json",
    )
    assert remediated.status_code == 200 and remediated.json()["status"] == "remediated"
    assert codes(build) == []
    listed = workbench.client().get(VALIDATIONS).json()
    assert [(v["status"], v["outcome"]) for v in listed] == [("concluded", "conditions")]


def test_a_token_of_another_team_of_model_risk_and_the_owners_or_without_the_scope_is_refused(
    mirrored_builds, org, ci, workbench
):
    without_scope = make_service_caller(org["model-risk"], "risk-reader", [Scope.GATE_READ])
    answer = open_for_risk(without_scope.client())
    assert answer.status_code == 403 and "validations:write" in answer.json()["detail"]
    # The pipeline of Data Science, which owns fraud-score, has every scope.
    answer = open_for_risk(ci.client())
    assert answer.status_code == 403 and answer.json()["code"] == "token_wrong_team"
    both = make_service_caller(
        org["model-risk"],
        "risk-and-owners",
        [Scope.VALIDATIONS_WRITE],
        granted_teams=(org["data-science"],),
    )
    answer = open_for_risk(both.client())
    assert answer.status_code == 403 and answer.json()["code"] == "token_not_independent"
    assert not Validation.objects.exists()

    # A platform token granted Model Risk does Model Risk's work.
    granted = make_service_caller(
        org["platform-operations"],
        "platform-for-risk",
        [Scope.VALIDATIONS_WRITE],
        granted_teams=(org["model-risk"],),
    )
    assert open_for_risk(granted.client()).status_code == 201
    validation = Validation.objects.get()
    findings = f"{VALIDATIONS}{validation.pk}/findings/"
    for token, code in ((ci, "token_wrong_team"), (both, "token_not_independent")):
        answer = token.client().post(findings, finding_body(), format="json")
        assert answer.status_code == 403 and answer.json()["code"] == code
    answer = without_scope.client().post(findings, finding_body(), format="json")
    assert answer.status_code == 403
    assert not validation.findings.exists()

    finding = workbench.client().post(findings, finding_body(), format="json").json()
    close = f"/api/v1/models/fraud-score/findings/{finding['id']}/close/"
    body = {"status": "remediated", "note": "We fixed it ourselves."}
    for token, code in ((ci, "token_wrong_team"), (both, "token_not_independent")):
        answer = token.client().post(close, body, format="json")
        assert answer.status_code == 403 and answer.json()["code"] == code
    assert without_scope.client().post(close, body, format="json").status_code == 403
    assert validation.findings.get().status == "open"


def test_the_validators_independence_is_checked_over_the_api(
    mirrored_builds, org, workbench, model_risk_approver, requester, login, tmp_path
):
    client = workbench.client()
    answer = open_for_risk(client, validator="peer")
    assert answer.status_code == 403 and answer.json()["code"] == "not_model_risk"
    answer = open_for_risk(client, versions=["2.1"])  # Rita authored 2.1's commit
    assert answer.status_code == 403 and answer.json()["code"] == "validator_authored_commit"
    build_register(
        "fraud-score",
        "3.0",
        repository="https://git.example.com/data-science/unmirrored",
        artifact_sha256="d" * 64,
    )
    answer = open_for_risk(client, versions=["3.0"])
    assert answer.status_code == 403 and answer.json()["code"] == "commits_unknown"

    # A person outside Model Risk opens nothing, over the API as on the pages.
    answer = login(requester).post(
        VALIDATIONS,
        {"versions": ["2.0"], "scope": SCOPE, "validator": "risk"},
        content_type="application/json",
    )
    assert answer.status_code == 403 and answer.json()["code"] == "not_model_risk"

    membership_set(actor=None, user=model_risk_approver, team=org["data-science"])
    answer = open_for_risk(client)
    assert answer.status_code == 403 and answer.json()["code"] == "validator_not_independent"
    # Signed in, she is not independent of the model either.
    answer = login(model_risk_approver).post(
        VALIDATIONS,
        {"versions": ["2.0"], "scope": SCOPE, "validator": "risk"},
        content_type="application/json",
    )
    assert answer.status_code == 403 and answer.json()["code"] == "validator_not_independent"
    assert not Validation.objects.exists()
    assert not AuditEvent.objects.filter(action="validation.opened").exists()


def test_a_validation_is_opened_only_with_what_it_covers_and_by_whom(
    mirrored_builds, workbench, model_risk_approver, login
):
    client = workbench.client()
    for fields, field in (
        ({"versions": ["9.9"]}, "versions"),
        ({"versions": []}, "versions"),
        ({"validator": "nobody"}, "validator"),
        ({"scope": "   "}, "scope"),
        ({"colour": "red"}, "colour"),
    ):
        answer = open_for_risk(client, **fields)
        assert answer.status_code == 400 and field in answer.json(), (fields, answer.json())
    missing = client.post("/api/v1/models/no-such-model/validations/", {}, format="json")
    assert missing.status_code == 404
    assert not Validation.objects.exists()

    # Model Risk's people open one too, signed in, and name another validator or themselves.
    opened = login(model_risk_approver).post(
        VALIDATIONS,
        {"versions": ["2.0"], "scope": SCOPE, "validator": "risk"},
        content_type="application/json",
    )
    assert opened.status_code == 201
    pk = opened.json()["id"]
    findings = f"{VALIDATIONS}{pk}/findings/"
    for fields, field in (
        ({"severity": "critical"}, "severity"),
        ({"owner": "nobody"}, "owner"),
        ({"remediation_due": "soon"}, "remediation_due"),
        ({"title": ""}, "title"),
    ):
        answer = client.post(findings, finding_body(**fields), format="json")
        assert answer.status_code == 400 and field in answer.json(), (fields, answer.json())
    elsewhere = client.post(
        f"/api/v1/models/fraud-score/validations/{pk + 1000}/findings/", finding_body()
    )
    assert elsewhere.status_code == 404
    assert not Validation.objects.get().findings.exists()


def test_an_open_validation_is_retried_safely_with_an_idempotency_key(mirrored_builds, workbench):
    body = {"versions": ["2.0"], "scope": SCOPE, "validator": "risk"}
    client = workbench.client()
    first = client.post(VALIDATIONS, body, format="json", headers={"Idempotency-Key": "v-1"})
    again = client.post(VALIDATIONS, body, format="json", headers={"Idempotency-Key": "v-1"})
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again["Idempotent-Replayed"] == "true"
    assert Validation.objects.count() == 1


def test_the_inventory_list_is_cursor_paged_filtered_and_flat_in_queries(
    org, ci, model_risk_approver
):
    for index in range(3):
        build_register(f"model-{index:02d}", "1.0")
    client = ci.client()

    def names_paged(**query) -> tuple[list[str], int]:
        names, url, pages = [], "/api/v1/inventory/", 0
        params = {"page_size": 2, **query}
        while url:
            answer = client.get(url, params)
            assert answer.status_code == 200, answer.content
            names += [entry["name"] for entry in answer.json()["results"]]
            url, params, pages = answer.json()["next"], {}, pages + 1
        return names, pages

    assert names_paged() == (["model-00", "model-01", "model-02"], 2)
    first = client.get("/api/v1/inventory/", {"page_size": 2}).json()
    assert set(first["results"][0]) >= {"id", "name", "risk_tier", "next_validation_due"}
    # Models registered between two pages: the next page neither repeats one already read
    # nor skips one still to come.
    build_register("model-00a", "1.0")
    build_register("model-01a", "1.0")
    rest = client.get(first["next"]).json()["results"]
    assert [entry["name"] for entry in rest] == ["model-01a", "model-02"]

    model_inventory_update(
        actor=model_risk_approver,
        model=RegisteredModel.objects.get(name="model-01"),
        risk_tier=1,
        next_validation_due=date(2027, 1, 31),
    )
    assert names_paged(risk_tier=1)[0] == ["model-01"]
    assert names_paged(validation_due_by="2027-02-01")[0] == ["model-01"]
    assert names_paged(owner_team="model-risk")[0] == []
    assert names_paged(lifecycle_status=LifecycleStatus.IN_DEVELOPMENT)[0] == [
        "model-00",
        "model-00a",
        "model-01",
        "model-01a",
        "model-02",
    ]
    for bad in (
        {"risk_tier": "7"},
        {"lifecycle_status": "dormant"},
        {"validation_due_by": "next year"},
        {"owner_team": "not a slug"},
    ):
        answer = client.get("/api/v1/inventory/", bad)
        assert answer.status_code == 400 and answer.json()["code"] == "invalid_filter"
        assert next(iter(bad)) in answer.json()["fields"]

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/api/v1/inventory/", {"page_size": 200}).status_code == 200
        return len(captured)

    few = queries()
    for index in range(30):
        build_register(f"more-{index:02d}", "1.0")
    assert queries() == few
