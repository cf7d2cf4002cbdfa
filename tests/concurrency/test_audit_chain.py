"""Concurrent appends from many connections still make one gapless, valid chain."""

from functools import partial

import pytest
from django.db import connection, transaction

from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import audit_record
from audit.verification import verify_chain
from tests.concurrency.helpers import race
from tests.conftest import TRANSACTIONAL_APPS

THREADS = 16
APPENDS = 200

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL"
)


def _tail() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


@pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)
def test_sixteen_writers_make_one_gapless_valid_chain():
    start = _tail()

    def writer(number: int) -> None:
        for append in range(APPENDS):
            with transaction.atomic():
                audit_record(
                    actor=None,
                    action=AuditAction.GATE_CHECKED,
                    data={"writer": number, "append": append},
                )

    _, errors = race([partial(writer, n) for n in range(THREADS)])
    assert errors == []
    rows = list(
        AuditEvent.objects.filter(seq__gt=start)
        .order_by("seq")
        .values_list("seq", "prev_hash", "hash", "data")
    )
    assert [row[0] for row in rows] == list(range(start + 1, start + 1 + THREADS * APPENDS))
    assert all(rows[n][1] == rows[n - 1][2] for n in range(1, len(rows)))
    per_writer = {}
    for _seq, _prev, _hash, data in rows:
        per_writer.setdefault(data["writer"], []).append(data["append"])
    assert per_writer == {n: list(range(APPENDS)) for n in range(THREADS)}
    report = verify_chain()
    assert report.ok, report.problem
