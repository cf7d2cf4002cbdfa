"""The gate's running totals under concurrent decisions: transactions that record several
decisions, in different orders (a platform judging every build of a commit does), neither
deadlock on the totals' rows nor lose a count."""

from functools import partial

import pytest
from django.db import connection, transaction
from django.db.models import Count

from releases.models import GateDecision, GateTally
from releases.services.gate import gate_decide
from tests.concurrency.helpers import race
from tests.conftest import TRANSACTIONAL_APPS

THREADS = 8
ROUNDS = 5
ORDER = ["dev", "test", "prod"]

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL"
)


@pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)
def test_decisions_recorded_together_in_any_order_are_all_counted(envs, builds):
    def judge_all(number: int) -> None:
        order = ORDER[number % 3 :] + ORDER[: number % 3]
        for _ in range(ROUNDS):
            with transaction.atomic():
                for environment in order if number % 2 else reversed(order):
                    gate_decide(
                        actor=None, environment=environment, model="fraud-score", version="1.0"
                    )

    _, errors = race([partial(judge_all, n) for n in range(THREADS)])
    assert errors == []
    recorded = {
        (row["environment__name"], row["allowed"]): row["n"]
        for row in GateDecision.objects.values("environment__name", "allowed").annotate(
            n=Count("id")
        )
    }
    counted = {
        (row.environment, row.allowed): row.count for row in GateTally.objects.filter(code="")
    }
    assert counted == recorded
    assert sum(counted.values()) == THREADS * ROUNDS * len(ORDER)
