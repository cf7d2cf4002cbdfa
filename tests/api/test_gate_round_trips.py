"""What one gate check asks of the database (issue 13): one read for the token, one for the
question, and one short transaction that records the decision, its audit event and the running
totals; the same number of statements however long the history grows."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from audit.verification import verify_chain
from releases.builders import deploy, file_change, release_to_test
from releases.models import GateDecision, GateTally

pytestmark = pytest.mark.django_db

# Token, question, BEGIN, decision, the append lock with the tail (one round trip on
# PostgreSQL), the event with the totals (one round trip there too), COMMIT.
ROUND_TRIPS = {"postgresql": 7, "sqlite": 8}


def gate_statements(client, question: dict) -> tuple[dict, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = client.post("/api/v1/gate/", question, format="json")
    assert response.status_code == 200, response.content
    # PREPARE goes once per connection (releases.selectors.gate.Statement), not per check.
    sql = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith("PREPARE")]
    return response.json(), sql


@pytest.fixture
def prod_ready(envs, builds, ci, clock, requester, peer, prod_signers):
    release_to_test(
        envs, builds["1.0"], ci.account, clock, requester, peer, pause=timedelta(days=8)
    )
    return file_change(
        model_version=builds["1.0"],
        environment=envs["prod"],
        requester=requester,
        signers=prod_signers,
        window_start=clock.now,
    )


def test_a_gate_check_costs_the_same_statements_at_any_history(
    prod_ready, envs, builds, ci, clock, django_clock
):
    client = ci.client()
    question = {"environment": "prod", "model": "fraud-score", "version": "1.0"}
    answer, before = gate_statements(client, question)
    assert answer["allowed"] is True, answer
    assert len(before) == ROUND_TRIPS[connection.vendor], before

    for _ in range(4):
        for number in ("1.1", "1.2"):
            deploy(
                actor=ci.account, environment=envs["dev"], model_version=builds[number], clock=clock
            )
    again, after = gate_statements(client, question)
    assert again["allowed"] is True
    assert len(after) == len(before), after


def test_the_short_transaction_records_the_decision_its_event_and_the_totals(envs, builds, ci):
    client = ci.client()
    question = {"environment": "prod", "model": "fraud-score", "version": "1.0"}
    answer, _ = gate_statements(client, question)
    answer, sql = gate_statements(client, question)
    # Inside a test's transaction the service's own is a savepoint. A refusal reads no more
    # than an approval.
    opening = next(i for i, sql in enumerate(sql) if sql.startswith(("BEGIN", "SAVEPOINT")))
    assert opening == 2 and len(sql) == ROUND_TRIPS[connection.vendor], sql
    assert sql[-1].startswith(("COMMIT", "RELEASE SAVEPOINT"))

    decision = GateDecision.objects.order_by("-id").first()
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.action == "gate.checked" and event.data["gate_decision"] == decision.pk
    assert [r["code"] for r in decision.reasons] == [r["code"] for r in answer["reasons"]]
    totals = {t.code: t.count for t in GateTally.objects.filter(environment="prod")}
    assert totals == {"": 2, **{r["code"]: 2 for r in answer["reasons"]}}
    assert verify_chain().ok
