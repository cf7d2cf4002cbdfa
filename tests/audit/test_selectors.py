"""Who reads the trail, and the filtered, cursor-paginated reads."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser

from audit.actions import AuditAction
from audit.selectors import (
    EventFilters,
    audit_event_page,
    audit_events_stream,
    can_read_audit,
)
from portal.exceptions import RuleDenied

pytestmark = pytest.mark.django_db

SIGNED = AuditAction.CHANGE_REQUEST_SIGNED


def test_who_can_read_the_trail(
    auditor, change_manager, administrator, requester, model_risk_approver, service_caller
):
    assert can_read_audit(auditor)
    assert can_read_audit(change_manager)
    assert can_read_audit(administrator)
    assert not can_read_audit(requester)
    assert not can_read_audit(model_risk_approver)
    assert not can_read_audit(AnonymousUser())
    assert not can_read_audit(None)
    assert can_read_audit(service_caller("audit:read").account)
    assert not can_read_audit(service_caller("gate:read").account)


def test_reads_refuse_people_without_audit_rights(requester):
    with pytest.raises(RuleDenied):
        audit_event_page(user=requester, filters=EventFilters())
    with pytest.raises(RuleDenied):
        list(audit_events_stream(user=requester, filters=EventFilters()))


@pytest.fixture
def mixed(org, record_events, requester, change_manager):
    risk, ops = org["model-risk"], org["platform-operations"]
    return {
        "risk_prod": record_events(3, action=SIGNED, target=risk, environment="prod"),
        "ops_test": record_events(
            2,
            action=AuditAction.DEPLOYMENT_SUCCEEDED,
            target=ops,
            environment="test",
            actor=requester,
        ),
        "risk_test": record_events(
            2,
            action=SIGNED,
            target=risk,
            environment="test",
            actor=change_manager,
        ),
    }


def _seqs(page) -> list[int]:
    return [event.seq for event in page.events]


@pytest.mark.parametrize(
    ("filters", "groups"),
    [
        ({"action": SIGNED}, ["risk_prod", "risk_test"]),
        ({"environment": "test"}, ["ops_test", "risk_test"]),
        ({"actor": "requester"}, ["ops_test"]),
        ({"object_type": "portal.team", "environment": "prod"}, ["risk_prod"]),
        ({"action": SIGNED, "actor": "changemgr"}, ["risk_test"]),
    ],
)
def test_filters(auditor, mixed, filters, groups):
    expected = sorted((e.seq for g in groups for e in mixed[g]), reverse=True)
    page = audit_event_page(user=auditor, filters=EventFilters(**filters), limit=100)
    assert _seqs(page)[: len(expected)] == expected
    assert all(seq not in expected for seq in _seqs(page)[len(expected) :])
    assert set(_seqs(page)) >= set(expected)


def test_object_filter_gives_one_objects_events_only(auditor, mixed, org):
    ops = org["platform-operations"]
    page = audit_event_page(
        user=auditor,
        filters=EventFilters(object_type="portal.team", object_id=str(ops.pk)),
        limit=100,
    )
    assert {e.object_id for e in page.events} == {str(ops.pk)}
    assert {e.seq for e in mixed["ops_test"]} <= set(_seqs(page))


def test_time_range(auditor, mixed):
    first, last = mixed["ops_test"][0], mixed["ops_test"][-1]
    filters = EventFilters(since=first.occurred_at, until=last.occurred_at)
    assert _seqs(audit_event_page(user=auditor, filters=filters)) == [last.seq, first.seq]
    later = EventFilters(since=last.occurred_at + timedelta(microseconds=1))
    assert last.seq not in _seqs(audit_event_page(user=auditor, filters=later))


def test_cursor_pages_cover_everything_once_newest_first(auditor, mixed):
    expected = sorted((e.seq for g in ("risk_prod", "risk_test") for e in mixed[g]), reverse=True)
    filters = EventFilters(action=SIGNED)
    seen, cursor = [], None
    while True:
        page = audit_event_page(user=auditor, filters=filters, cursor=cursor, limit=2)
        assert len(page.events) <= 2
        seen += _seqs(page)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen[: len(expected)] == expected
    assert len(seen) == len(set(seen))


def test_stream_yields_every_match_across_chunks(auditor, mixed, monkeypatch):
    monkeypatch.setattr("audit.selectors.STREAM_CHUNK", 2)
    streamed = [
        e.seq for e in audit_events_stream(user=auditor, filters=EventFilters(environment="test"))
    ]
    expected = sorted((e.seq for g in ("ops_test", "risk_test") for e in mixed[g]), reverse=True)
    assert streamed[: len(expected)] == expected
    assert len(streamed) == len(set(streamed))
