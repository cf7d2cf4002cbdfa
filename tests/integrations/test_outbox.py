"""The audit trail read as an outbox: each consumer takes each event it cares about exactly once,
in order, and a failed run gives its events back."""

from functools import partial

import pytest
from django.db import connection, transaction

from audit.actions import AuditAction
from audit.services import audit_record
from integrations.models import TrailCursor
from integrations.outbox import claim_events
from tests.concurrency.helpers import race
from tests.conftest import TRANSACTIONAL_APPS

WANTED = {AuditAction.GATE_CHECKED}


def _record(action: AuditAction, **data) -> int:
    with transaction.atomic():
        return audit_record(actor=None, action=action, data=data).seq


def _claim(consumer: str = "tickets", limit: int = 500) -> list[int]:
    with transaction.atomic():
        return [event.seq for event in claim_events(consumer=consumer, actions=WANTED, limit=limit)]


@pytest.mark.django_db
def test_events_are_claimed_once_in_order_and_only_those_asked_for():
    first = _record(AuditAction.GATE_CHECKED, n=1)
    _record(AuditAction.TEAM_CREATED)
    second = _record(AuditAction.GATE_CHECKED, n=2)

    assert _claim() == [first, second]
    assert _claim() == []
    third = _record(AuditAction.GATE_CHECKED, n=3)
    assert _claim() == [third]


@pytest.mark.django_db
def test_each_consumer_has_its_own_cursor():
    seq = _record(AuditAction.GATE_CHECKED)

    assert _claim("tickets") == [seq]
    assert _claim("webhooks") == [seq]


@pytest.mark.django_db
def test_a_limit_leaves_the_rest_for_the_next_claim():
    seqs = [_record(AuditAction.GATE_CHECKED, n=n) for n in range(5)]

    assert _claim(limit=2) == seqs[:2]
    assert _claim(limit=2) == seqs[2:4]
    assert _claim(limit=2) == seqs[4:]


@pytest.mark.django_db
def test_a_failed_run_gives_its_events_back():
    seq = _record(AuditAction.GATE_CHECKED)

    with pytest.raises(ConnectionError), transaction.atomic():
        assert [e.seq for e in claim_events(consumer="tickets", actions=WANTED)] == [seq]
        raise ConnectionError("the ticket system is down")

    assert _claim() == [seq]


@pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)
def test_claiming_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside the consumer's transaction"):
        claim_events(consumer="tickets", actions=WANTED)
    assert not TrailCursor.objects.filter(name="tickets").exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent readers need PostgreSQL")
@pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)
def test_concurrent_claims_never_take_the_same_event_twice():
    TrailCursor.objects.filter(name="racing").delete()
    start = TrailCursor.objects.create(name="racing")
    seqs = {_record(AuditAction.GATE_CHECKED, n=n) for n in range(40)}
    start.last_seq = min(seqs) - 1
    start.save()

    def claimer() -> list[int]:
        taken = []
        for _ in range(10):
            taken += _claim("racing", limit=3)
        return taken

    results, errors = race([partial(claimer) for _ in range(4)])

    assert errors == []
    taken = [seq for result in results for seq in result]
    assert sorted(taken) == sorted(seqs)
