"""The gate as a table: every code has one rule and a test, and every path that asks the gate
(the API, deployment start, the change request page) gets the same answer to the same
question, whether the build is named by version or by artifact digest alone."""

import ast
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry.builders import build_register
from releases.builders import file_change, release_to_test
from releases.models import Deployment, GateDecision
from releases.selectors.gate import gate_question_resolve
from releases.services import policy
from releases.services.deployments import deployment_record_result, deployment_start
from releases.services.gate import ROLLBACK, RULES, GateCode, gate_evaluate

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
GATE_TESTS = [
    ROOT / "tests/releases/test_gate.py",
    ROOT / "tests/releases/test_gate_table.py",
    ROOT / "tests/api/test_deployments_api.py",
    ROOT / "tests/releases/test_pipeline_status.py",
    ROOT / "tests/releases/test_policy_in_force.py",
    ROOT / "tests/releases/test_model_risk.py",
    ROOT / "tests/releases/test_artifact_gate.py",
    ROOT / "tests/releases/test_conflicts.py",
    ROOT / "tests/releases/test_standard_changes.py",
]


def asserted_codes() -> set[str]:
    """Every gate code that some `assert` of the gate tests names."""
    found = set()
    for path in GATE_TESTS:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assert):
                for leaf in ast.walk(node):
                    if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str):
                        found.add(leaf.value)
    return found & set(GateCode.values)


def test_every_code_has_exactly_one_rule_a_test_and_a_line_in_the_docs():
    codes = [rule.code for rule in RULES]
    assert len(codes) == len(set(codes)), "a code with two rules"
    assert set(codes) == set(GateCode), "a code without a rule, or a rule without a code"
    assert asserted_codes() == set(GateCode.values), "a rule without a test"
    docs = (ROOT / "docs/change-requests.md").read_text()
    undocumented = [code for code in GateCode.values if f"`{code}`" not in docs]
    assert undocumented == []
    for rule in RULES:
        assert rule.blocks or rule.warns, rule.code
        assert rule.check.__name__ == rule.code.value, "one function per rule, named by its code"


def test_the_openapi_schema_lists_every_code(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    code = schema["components"]["schemas"]["ReasonOutput"]["properties"]["code"]
    assert code["allOf"] == [{"$ref": "#/components/schemas/GateCodeEnum"}]
    assert set(schema["components"]["schemas"]["GateCodeEnum"]["enum"]) == set(GateCode.values)


@pytest.fixture
def pending_prod_change(envs, builds, ci, clock, requester, peer, prod_signers):
    """1.0 ran in test for three days only; its prod change is approved and in its window, so
    the gate refuses it for the soak alone."""
    release_to_test(
        envs, builds["1.0"], ci.account, clock, requester, peer, pause=timedelta(days=3)
    )
    change = file_change(
        model_version=builds["1.0"],
        environment=envs["prod"],
        requester=requester,
        signers=prod_signers,
        window_start=clock.now,
    )
    return change


def reasons_of(body: dict) -> list[tuple[str, str]]:
    return [(reason["code"], reason["message"]) for reason in body["reasons"]]


@pytest.mark.parametrize("named_by", ["version", "artifact_sha256"])
def test_the_api_the_deployment_start_and_the_page_give_one_answer(
    named_by, pending_prod_change, builds, ci, login, release_approver, django_clock
):
    build = builds["1.0"]
    question = {"environment": "prod", "model": "fraud-score", named_by: getattr(build, named_by)}
    client = ci.client()

    gate = client.post("/api/v1/gate/", question, format="json").json()
    start = client.post("/api/v1/deployments/", question, format="json")
    assert start.status_code == 403
    page = login(release_approver).get(f"/releases/change-requests/{pending_prod_change.number}/")
    text = re.sub(r"\s+", " ", page.content.decode())

    assert gate["allowed"] is False and gate["change_request"] == pending_prod_change.number
    assert [code for code, _ in reasons_of(gate)] == ["soak_not_met"]
    assert reasons_of(start.json()) == reasons_of(gate)
    for code, message in reasons_of(gate):
        assert f"<code>{code}</code> {message}" in text.replace("&#x27;", "'")
    decisions = GateDecision.objects.filter(environment__name="prod").order_by("pk")
    assert [d.reasons for d in decisions] == [gate["reasons"], gate["reasons"]]
    assert not Deployment.objects.filter(environment__name="prod").exists()


def test_a_digest_names_one_version_deterministically(envs, fraud, clock):
    """Where one digest stands under two versions, the newest registration answers."""
    first = build_register(fraud.name, "3.0")
    twin = build_register(  # the same build (one digest, one build) under another name
        fraud.name,
        "3.0-rebuild",
        artifact_sha256=first.artifact_sha256,
        commit_sha=first.commit_sha,
        build_id=first.build_id,
    )
    for _ in range(3):
        question = gate_question_resolve(
            environment="dev", model="fraud-score", artifact_sha256=first.artifact_sha256
        )
        assert question.model_version.pk == twin.pk


def test_resolving_a_question_costs_one_statement_whatever_the_history(
    pending_prod_change, builds, ci, clock
):
    def statements() -> int:
        with CaptureQueriesContext(connection) as captured:
            gate_evaluate(
                environment="prod",
                model="fraud-score",
                artifact_sha256=builds["1.0"].artifact_sha256,
                now=clock.now,
            )
        return len(captured.captured_queries)

    statements()  # PostgreSQL prepares the statement on the connection's first question
    few = statements()
    for version in ("1.1", "1.2"):
        release_to_test_quickly(builds[version], ci, clock)
    assert few == statements() == 1


def release_to_test_quickly(build, ci, clock):
    """A dev deployment: history the gate must not read row by row."""
    started, _ = deployment_start(
        actor=ci.account, environment="dev", model_version=build, now=clock.now
    )
    deployment_record_result(actor=ci.account, deployment=started, status="succeeded")


def test_a_rollback_is_judged_by_the_rollback_rows_of_the_table(
    envs, builds, ci, clock, requester, peer, django_clock
):
    """A freeze refuses normal changes, not the way back; an unknown model is a 404 naming the
    rule, as for any path parameter."""
    for version in ("1.0", "1.1"):
        release_to_test(envs, builds[version], ci.account, clock, requester, peer)
    policy.freeze_window_create(
        actor=None,
        environment=envs["test"],
        starts_at=clock.now - timedelta(hours=1),
        ends_at=clock.now + timedelta(hours=1),
        reason="Quarter close",
    )
    client = ci.client()
    question = {"environment": "test", "model": "fraud-score", "version": "1.0"}
    assert "freeze_in_effect" in [
        reason["code"] for reason in client.post("/api/v1/gate/", question).json()["reasons"]
    ]
    back = client.post(
        "/api/v1/environments/test/models/fraud-score/rollback/", {"reason": "Scores drift"}
    )
    assert back.status_code == 201 and back.json()["version"] == "1.0"
    unknown = client.post(
        "/api/v1/environments/test/models/no-such-model/rollback/", {"reason": "Scores drift"}
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_model"
    rollback_rows = {rule.code for rule in RULES if ROLLBACK in rule.blocks}
    assert GateCode.FREEZE_IN_EFFECT not in rollback_rows
    assert GateCode.UNKNOWN_MODEL in rollback_rows


@pytest.mark.parametrize("prepared", [True, False])
def test_the_question_is_answered_with_or_without_prepared_statements(
    prepared, settings, pending_prod_change, builds, clock
):
    """Behind a transaction-mode pooler the plain statement is sent; the answer is the same."""
    settings.GATEHOUSE_PREPARED_STATEMENTS = prepared
    with CaptureQueriesContext(connection) as captured:
        for _ in range(2):
            answer = gate_evaluate(
                environment="prod", model="fraud-score", version="1.0", now=clock.now
            )
            assert answer.codes() == ["soak_not_met"]
    sent = [query["sql"] for query in captured.captured_queries]
    expect_prepared = prepared and connection.vendor == "postgresql"
    assert any(sql.startswith("EXECUTE gatehouse_gate_question") for sql in sent) == (
        expect_prepared
    )
