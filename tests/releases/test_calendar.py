"""The change calendar (issue 18): a week and a month of change windows, freezes, maintenance
windows, deployments and rollbacks, by environment or team, with its filters, in the same
number of queries however many changes there are."""

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registry import services as registry
from registry.builders import build_register
from releases.builders import Clock, deploy, file_change
from releases.selectors.calendar import CalendarFilters, calendar_entries, calendar_page
from releases.services import policy
from releases.services.calendar import maintenance_window_cancel, maintenance_window_create
from releases.services.deployments import deployment_rollback

pytestmark = pytest.mark.django_db


@pytest.fixture
def week(clock) -> Clock:
    """Monday 00:00 of the week three weeks from now, in the display time zone."""
    ahead = timezone.localdate(clock.now) + timedelta(days=21)
    monday = ahead - timedelta(days=ahead.weekday())
    return Clock(timezone.make_aware(datetime.combine(monday, datetime.min.time())))


@pytest.fixture
def planned(envs, builds, requester, peer, ci, clock, week):
    """In that week: a prod change on Tuesday, a test change on Monday for another model, a
    freeze of prod on Thursday, a maintenance of test on Wednesday night, and in dev two
    deployments and a rollback on Friday."""
    churn = registry.model_register(actor=None, name="churn", owner_team="data-science")[0]
    prod = file_change(
        model_version=builds["1.0"],
        environment=envs["prod"],
        requester=requester,
        signers=[peer],
        window_start=week.at(days=1, hours=9).now,
        hours=4,
        now=clock.now,
    )
    test = file_change(
        model_version=build_register(churn.name, "3.1"),
        environment=envs["test"],
        requester=requester,
        window_start=week.at(hours=14).now,
        hours=2,
        now=clock.now,
    )
    freeze = policy.freeze_window_create(
        actor=None,
        environment=envs["prod"],
        starts_at=week.at(days=3).now,
        ends_at=week.at(days=4).now,
        reason="Quarter close",
    )
    maintenance = maintenance_window_create(
        actor=None,
        environment=envs["test"],
        starts_at=week.at(days=2, hours=22).now,
        ends_at=week.at(days=3, hours=2).now,
        title="Kubernetes upgrade",
    )
    friday = week.at(days=4, hours=10)
    deploy(actor=ci.account, environment=envs["dev"], model_version=builds["1.0"], clock=friday)
    deploy(actor=ci.account, environment=envs["dev"], model_version=builds["1.1"], clock=friday)
    friday.advance(minutes=30)
    rollback = deployment_rollback(
        actor=ci.account,
        environment=envs["dev"],
        model="fraud-score",
        reason="Scores drift",
        now=friday.now,
    )
    return {
        "prod": prod,
        "test": test,
        "freeze": freeze,
        "maintenance": maintenance,
        "rollback": rollback,
    }


def summaries(week: Clock, **filters) -> list[str]:
    found = calendar_entries(
        start=week.now, end=week.at(days=7).now, filters=CalendarFilters(**filters)
    )
    return [entry.summary for entry in found.entries]


def test_the_week_holds_every_kind_of_entry_earliest_first(planned, week):
    prod, test = planned["prod"], planned["test"]
    assert summaries(week) == [
        f"{test.number} churn 3.1 → test",
        f"{prod.number} fraud-score 1.0 → prod",
        "Maintenance of test: Kubernetes upgrade",
        "Freeze of prod: Quarter close",
        "fraud-score 1.0 deployed to dev",
        "fraud-score 1.1 deployed to dev",
        "Rollback of fraud-score to 1.0 in dev",
    ]
    # The week before and the week after hold none of it.
    assert summaries(week.at(days=-7)) == summaries(week.at(days=7)) == []


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"environment": "test"}, ["churn 3.1 → test", "Maintenance of test"]),
        (
            {"environment": "prod"},
            ["fraud-score 1.0 → prod", "Freeze of prod"],
        ),
        # Model Risk signs prod changes, not test's; it owns no model, so no deployment.
        (
            {"team": "model-risk"},
            ["fraud-score 1.0 → prod", "Maintenance of test", "Freeze of prod"],
        ),
        (
            {"team": "data-science"},
            [
                "churn 3.1 → test",
                "fraud-score 1.0 → prod",
                "Maintenance of test",
                "Freeze of prod",
                "fraud-score 1.0 deployed",
                "fraud-score 1.1 deployed",
                "Rollback of fraud-score",
            ],
        ),
        (
            {"model": "churn"},
            ["churn 3.1 → test", "Maintenance of test", "Freeze of prod"],
        ),
        ({"kind": "freeze"}, ["Freeze of prod"]),
        ({"kind": "rollback"}, ["Rollback of fraud-score"]),
        ({"kind": "change"}, ["churn 3.1 → test", "fraud-score 1.0 → prod"]),
        ({"kind": "emergency"}, []),
        ({"environment": "nowhere"}, []),
        ({"team": "no-such-team"}, ["Maintenance of test", "Freeze of prod"]),
    ],
)
def test_each_filter_keeps_what_it_names(planned, week, filters, expected):
    found = summaries(week, **filters)
    assert len(found) == len(expected), found
    for summary, start in zip(found, expected, strict=True):
        assert start in summary


def test_cancelled_drafts_and_cancelled_windows_are_not_on_the_calendar(
    planned, week, requester, envs, builds, clock
):
    from releases.services.change_requests import change_request_cancel, change_request_create

    change_request_cancel(actor=requester, change_request=planned["test"], reason="Not now.")
    maintenance_window_cancel(
        actor=None, maintenance_window=planned["maintenance"], reason="Postponed"
    )
    change_request_create(
        actor=requester,
        model_version=builds["1.2"],
        environment=envs["test"],
        title="Draft",
        justification="Later",
        rollback_plan="Back",
        window_start=week.at(hours=10).now,
        window_end=week.at(hours=11).now,
        now=clock.now,
    )
    assert summaries(week, kind="change") == [f"{planned['prod'].number} fraud-score 1.0 → prod"]
    assert summaries(week, kind="maintenance") == []


def test_the_week_page_has_a_row_per_environment_and_a_column_per_day(
    planned, week, login, release_approver
):
    client = login(release_approver)
    monday = week.now.date()
    text = client.get("/releases/calendar/", {"date": monday.isoformat()}).content.decode()
    assert f"Week of {monday:%A} {monday.day} {monday:%B %Y}" in text
    rows = text.split('<th scope="row">')[1:]
    assert [row.split("<", 1)[0] for row in rows] == ["dev", "test", "prod"]
    prod_row = rows[2]
    cells = prod_row.split("<td>")[1:]
    assert f"{planned['prod'].number} fraud-score 1.0 → prod" in cells[1]
    assert "09:00-13:00" in cells[1]
    # The freeze runs all Thursday.
    assert "Freeze of prod: Quarter close" in cells[3] and "all day" in cells[3]
    test_cells = rows[1].split("<td>")[1:]
    assert "from 22:00" in test_cells[2] and "until 02:00" in test_cells[3]
    by_team = client.get(
        "/releases/calendar/", {"date": monday.isoformat(), "group": "team"}
    ).content.decode()
    teams = [row.split("<", 1)[0] for row in by_team.split('<th scope="row">')[1:]]
    assert teams == ["Data Science", "Every team"]


def test_the_month_page_shows_the_month_in_weeks(planned, week, login, requester):
    client = login(requester)
    day = week.at(days=1).now.date()
    response = client.get("/releases/calendar/", {"view": "month", "date": day.isoformat()})
    text = response.content.decode()
    assert response.status_code == 200
    assert f"{day:%B %Y}" in text
    assert f"{planned['prod'].number} fraud-score 1.0 → prod" in text
    assert "Rollback of fraud-score to 1.0 in dev" in text
    assert text.count('<div class="cal-day">1</div>') >= 1
    filtered = client.get(
        "/releases/calendar/", {"view": "month", "date": day.isoformat(), "kind": "freeze"}
    ).content.decode()
    assert "Freeze of prod" in filtered and "fraud-score 1.0 → prod" not in filtered


def test_a_date_or_kind_that_means_nothing_shows_this_week(login, requester, envs):
    client = login(requester)
    for query in ({"date": "2026-02-31"}, {"date": "x" * 10}, {"kind": "party", "view": "year"}):
        response = client.get("/releases/calendar/", query)
        assert response.status_code == 200
        assert "Week of" in response.content.decode()


def test_deployments_past_the_limit_are_said_to_be_left_out(planned, week):
    found = calendar_entries(start=week.now, end=week.at(days=7).now, deployment_limit=2)
    assert found.deployments_truncated
    assert [e.kind for e in found.entries].count("deployment") == 2
    assert not calendar_entries(start=week.now, end=week.at(days=7).now).deployments_truncated


def _many_changes(envs, builds, requester, peer, clock, week, count: int) -> None:
    for index in range(count):
        file_change(
            model_version=builds[("1.0", "1.1", "1.2")[index % 3]],
            environment=envs["prod" if index % 2 else "test"],
            requester=requester,
            signers=[peer] if index % 2 else [],
            window_start=week.at(hours=4 * index).now,
            hours=1,
            now=clock.now,
        )


def _queries(fn) -> int:
    with CaptureQueriesContext(connection) as captured:
        fn()
    return len(captured.captured_queries)


def test_the_calendar_reads_in_the_same_queries_at_3_and_at_30_changes(
    envs, builds, requester, peer, clock, week, login, django_assert_max_num_queries
):
    monday = week.now.date()
    pages = [
        {"view": "week", "around": monday, "filters": CalendarFilters()},
        {"view": "month", "around": monday, "filters": CalendarFilters()},
        {"view": "week", "around": monday, "filters": CalendarFilters(team="model-risk")},
    ]
    urls = [
        f"/releases/calendar/?date={monday}",
        f"/releases/calendar/?view=month&date={monday}",
        f"/releases/calendar/?date={monday}&team=model-risk&kind=change",
    ]
    client = login(requester)
    _many_changes(envs, builds, requester, peer, clock, week, 3)
    few = [_queries(lambda page=page: calendar_page(**page)) for page in pages]
    few_urls = [_queries(lambda url=url: client.get(url)) for url in urls]
    assert len(calendar_page(**pages[1]).entries) == 3
    _many_changes(envs, builds, requester, peer, clock, week, 27)
    assert len(calendar_page(**pages[1]).entries) == 30
    for page, count in zip(pages, few, strict=True):
        with django_assert_max_num_queries(count):
            calendar_page(**page)
    for url, count in zip(urls, few_urls, strict=True):
        with django_assert_max_num_queries(count):
            response = client.get(url)
        assert response.content.decode().count('class="cal-entry kind-change"') >= 15
