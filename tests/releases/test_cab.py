"""The change advisory board's agenda (issue 18): the production changes of the coming days with
their risk, conflicts and readiness (signatures, soak, validation) as the gate would judge them
when their windows open, printable, in the same queries however many changes there are."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry.builders import build_register
from releases.builders import Clock, file_change, release_to_test
from releases.selectors.cab import cab_agenda
from releases.services import change_requests, policy
from releases.services.calendar import maintenance_window_create

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def production(envs):
    """prod is marked a production environment, as the demo marks it."""
    prod = envs["prod"]
    policy.environment_update(
        actor=None, environment=prod, rank=prod.rank, description="", is_production=True
    )


@pytest.fixture
def board(clock) -> Clock:
    """The CAB's week: from a week ahead, for seven days."""
    return clock.at(days=7)


@pytest.fixture
def agenda(envs, builds, ci, clock, board, requester, peer, prod_signers):
    """1.0 soaked in test and approved for prod on the board's second day (ready); 1.1 in
    approval in an overlapping window, never in test; a test change, a cancelled prod change
    and a prod change the week after, which are not on the agenda; a freeze and a maintenance
    of prod in the week."""
    release_to_test(envs, builds["1.0"], ci.account, clock, requester, peer)
    ready = file_change(
        model_version=builds["1.0"],
        environment=envs["prod"],
        requester=requester,
        signers=prod_signers,
        window_start=board.at(days=1, hours=9).now,
        hours=4,
        now=clock.now,
    )
    waiting = file_change(
        model_version=builds["1.1"],
        environment=envs["prod"],
        requester=requester,
        signers=[peer],
        window_start=board.at(days=1, hours=11).now,
        hours=4,
        now=clock.now,
    )
    in_test = file_change(
        model_version=builds["1.2"],
        environment=envs["test"],
        requester=requester,
        window_start=board.at(days=2).now,
        now=clock.now,
    )
    cancelled = file_change(
        model_version=builds["1.2"],
        environment=envs["prod"],
        requester=requester,
        window_start=board.at(days=3).now,
        hours=2,
        now=clock.now,
    )
    change_requests.change_request_cancel(
        actor=requester, change_request=cancelled, reason="Not this week."
    )
    later = file_change(
        model_version=builds["1.2"],
        environment=envs["prod"],
        requester=requester,
        window_start=board.at(days=8).now,
        hours=2,
        now=clock.now,
    )
    freeze = policy.freeze_window_create(
        actor=None,
        environment=envs["prod"],
        starts_at=board.at(days=5).now,
        ends_at=board.at(days=6).now,
        reason="Quarter close",
    )
    maintenance_window_create(
        actor=None,
        environment=envs["prod"],
        starts_at=board.at(days=4, hours=22).now,
        ends_at=board.at(days=5, hours=1).now,
        title="Database failover test",
    )
    return {
        "ready": ready,
        "waiting": waiting,
        "in_test": in_test,
        "cancelled": cancelled,
        "later": later,
        "freeze": freeze,
    }


def read(board: Clock, clock: Clock):
    return cab_agenda(start=board.now, end=board.at(days=7).now, now=clock.now)


def test_the_agenda_lists_the_weeks_production_changes_with_readiness_and_conflicts(
    agenda, board, clock
):
    found = read(board, clock)
    ready, waiting = agenda["ready"], agenda["waiting"]
    assert [item.change_request for item in found.items] == [ready, waiting]
    first, second = found.items

    assert first.ready and first.answer.allowed
    assert first.judged_at == ready.window_start
    assert [(s.label, s.signer) for s in first.signatures] == [
        ("Peer review (Data Science)", "peer"),
        ("Model Risk", "risk"),
        ("Platform Operations", "platform"),
        ("Release Management", "release"),
    ]
    assert first.soak.holds and first.soak.days == 7
    assert [c.code for c in first.conflicts] == ["conflicting_change"]
    assert waiting.number in first.conflicts[0].message

    assert not second.ready
    assert second.signatures_missing == ["Model Risk", "Platform Operations", "Release Management"]
    assert [b.code for b in second.blockers] == ["soak_not_met"]
    assert [c.code for c in second.conflicts] == ["conflicting_change"]
    assert ready.number in second.conflicts[0].message
    assert (found.ready, found.with_conflicts) == (1, 2)
    assert found.freezes == [agenda["freeze"]]
    assert [window.title for window in found.maintenance] == ["Database failover test"]


def test_the_soak_is_judged_at_the_window_start_not_now(agenda, board, clock):
    """1.0 went live in test an hour before filing: seven days are not up now, but they are
    when its prod window opens."""
    assert agenda["ready"].window_start - clock.now > timedelta(days=7)
    item = read(board, clock).items[0]
    assert item.soak.earliest_allowed_at < agenda["ready"].window_start
    assert item.soak.holds


def test_validation_is_shown_where_the_policy_asks_for_it(agenda, board, clock, envs, org):
    assert not read(board, clock).items[0].validation_required
    policy.environment_policy_change(
        actor=None,
        environment=envs["prod"],
        approval_teams=[org[slug] for slug in ("model-risk", "release-management")]
        + [org["platform-operations"]],
        soak_source=envs["test"],
        soak_days=7,
        requires_validation=True,
    )
    item = read(board, clock).items[0]
    assert item.validation_required and item.validation is None
    assert [b.code for b in item.blockers] == ["validation_missing"]
    assert not item.ready


def test_the_agenda_page_is_printable_and_names_what_it_shows(
    agenda, board, clock, login, release_approver
):
    client = login(release_approver)
    response = client.get("/releases/cab/", {"from": board.now.date().isoformat()})
    text = response.content.decode()
    assert response.status_code == 200
    for shown in ("ready", "waiting"):
        assert f">{agenda[shown].number}</a>" in text
    for hidden in ("in_test", "cancelled", "later"):
        assert f">{agenda[hidden].number}</a>" not in text
    assert "2 changes to production with a window in these 7 days" in text
    assert "1 ready, 2 with conflicts" in text
    assert '<button type="button" class="primary" data-print>Print the agenda</button>' in text
    assert '<span class="badge warn">missing</span> Model Risk' in text
    assert '<span class="badge ok">signed</span> Model Risk: risk' in text
    assert '<code title="' in text and ">soak_not_met</code>" in text
    assert "Tier 2" in text and "Quarter close" in text and "Database failover test" in text
    css = (ROOT / "static/css/gatehouse.css").read_text()
    printed = css.split("@media print", 1)[1]
    assert ".no-print" in printed and ".topbar" in printed and "@page" in printed
    # The week after holds only the later change; a period that means nothing is this week.
    after = client.get("/releases/cab/", {"from": board.at(days=7).now.date().isoformat()})
    assert f">{agenda['later'].number}</a>" in after.content.decode()
    for query in ({"from": "someday"}, {"days": "0"}, {"days": "999"}, {"days": "³"}):
        assert client.get("/releases/cab/", query).status_code == 200


def test_the_agenda_reads_in_the_same_queries_at_3_and_at_30_changes(
    envs, fraud, requester, peer, clock, board, login, release_approver
):
    def file(start: int, count: int) -> None:
        for index in range(start, start + count):
            file_change(
                model_version=build_register(fraud.name, f"5.{index}"),
                environment=envs["prod"],
                requester=requester,
                signers=[peer] if index % 2 else [],
                window_start=board.at(hours=4 * index).now,
                hours=1,
                now=clock.now,
            )

    client = login(release_approver)
    url = f"/releases/cab/?from={board.now.date().isoformat()}"

    def queries() -> tuple[int, int, int]:
        with CaptureQueriesContext(connection) as selector:
            items = read(board, clock).items
        with CaptureQueriesContext(connection) as page:
            assert client.get(url).status_code == 200
        return len(items), len(selector.captured_queries), len(page.captured_queries)

    file(0, 3)
    few = queries()
    file(3, 27)
    many = queries()
    assert (few[0], many[0]) == (3, 30)
    assert many[1:] == few[1:]
