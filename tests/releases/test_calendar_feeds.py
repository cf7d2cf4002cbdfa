"""iCalendar feeds (issue 18): a secret address per person and per team, read without a session
and parsed here by the `icalendar` package; revoked, replaced or unknown addresses are not found;
only their owners manage them, and every issue and revocation is audited."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from icalendar import Calendar

from audit.models import AuditEvent
from portal.exceptions import Conflict, RuleDenied
from releases.builders import deploy, file_change
from releases.models import CalendarFeed
from releases.services import policy
from releases.services.calendar import calendar_feed_issue, calendar_feed_revoke

pytestmark = pytest.mark.django_db


@pytest.fixture
def planned(envs, builds, requester, peer, ci, clock):
    """A prod change two days ahead, a test change, a freeze of prod next week and a deployment
    to dev now."""
    prod = file_change(
        model_version=builds["1.0"],
        environment=envs["prod"],
        requester=requester,
        signers=[peer],
        window_start=clock.at(days=2).now,
        hours=4,
    )
    test = file_change(
        model_version=builds["1.1"],
        environment=envs["test"],
        requester=requester,
        window_start=clock.at(days=1).now,
        hours=2,
    )
    freeze = policy.freeze_window_create(
        actor=None,
        environment=envs["prod"],
        starts_at=clock.at(days=8).now,
        ends_at=clock.at(days=10).now,
        reason="Year-end close",
    )
    deployment = deploy(
        actor=ci.account, environment=envs["dev"], model_version=builds["1.2"], clock=clock
    )
    return {"prod": prod, "test": test, "freeze": freeze, "deployment": deployment}


def path_of(token: str) -> str:
    return f"/releases/calendar/feeds/{token}.ics"


def read_feed(token: str) -> Calendar:
    """The feed as Outlook reads it: no session, no cookie."""
    response = Client().get(path_of(token))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    return Calendar.from_ical(response.content)


def events_of(calendar: Calendar) -> dict[str, object]:
    return {str(event["summary"]): event for event in calendar.walk("VEVENT")}


def test_a_persons_feed_holds_their_changes_freezes_and_deployments_at_their_times(
    planned, requester
):
    issued = calendar_feed_issue(actor=requester, owner=requester)
    calendar = read_feed(issued.token)
    assert str(calendar["x-wr-calname"]) == "Gatehouse: requester"
    events = events_of(calendar)
    prod, test = planned["prod"], planned["test"]
    change = events[f"{prod.number} fraud-score 1.0 → prod"]
    assert change["dtstart"].dt == prod.window_start
    assert change["dtend"].dt == prod.window_end
    assert str(change["uid"]).startswith(f"change-request-{prod.pk}@")
    assert str(change["url"]).endswith(f"/releases/change-requests/{prod.number}/")
    assert "In peer review" not in str(change["description"])
    assert "in approval" in str(change["description"])
    assert events[f"{test.number} fraud-score 1.1 → test"]["dtstart"].dt == test.window_start
    freeze = events["Freeze of prod: Year-end close"]
    assert freeze["dtstart"].dt == planned["freeze"].starts_at
    assert freeze["dtend"].dt == planned["freeze"].ends_at
    deployment = planned["deployment"]
    deployed = events["fraud-score 1.2 deployed to dev"]
    assert deployed["dtstart"].dt == deployment.started_at
    assert str(deployed["location"]) == "dev"
    assert len(events) == 4


def test_a_teams_feed_holds_what_the_team_files_or_signs(planned, model_risk_approver, requester):
    """Model Risk signs prod changes, not test's, and owns no model: its feed has the prod
    change and the freeze."""
    issued = calendar_feed_issue(
        actor=model_risk_approver, owner=model_risk_approver.memberships.get().team
    )
    events = events_of(read_feed(issued.token))
    assert sorted(events) == sorted(
        [f"{planned['prod'].number} fraud-score 1.0 → prod", "Freeze of prod: Year-end close"]
    )


def test_a_revoked_replaced_or_unknown_address_is_not_found(planned, requester):
    first = calendar_feed_issue(actor=requester, owner=requester)
    read_feed(first.token)
    second = calendar_feed_issue(actor=requester, owner=requester)
    anonymous = Client()
    assert anonymous.get(path_of(first.token)).status_code == 404
    read_feed(second.token)
    calendar_feed_revoke(actor=requester, feed=second.feed)
    assert anonymous.get(path_of(second.token)).status_code == 404
    assert anonymous.get(path_of("not-a-token")).status_code == 404
    assert anonymous.get(path_of(second.token.upper())).status_code == 404
    # Read-only: nothing but GET.
    third = calendar_feed_issue(actor=requester, owner=requester)
    assert anonymous.post(path_of(third.token)).status_code == 405
    with pytest.raises(Conflict) as refused:
        calendar_feed_revoke(actor=requester, feed=second.feed)
    assert refused.value.code == "feed_revoked"


def test_only_the_token_hash_is_kept_and_every_issue_and_revocation_is_audited(requester, org):
    before = AuditEvent.objects.count()
    issued = calendar_feed_issue(actor=requester, owner=org["data-science"])
    again = calendar_feed_issue(actor=requester, owner=org["data-science"])
    calendar_feed_revoke(actor=requester, feed=again.feed)
    stored = CalendarFeed.objects.get(pk=issued.feed.pk)
    assert issued.token not in stored.token_hash and len(stored.token_hash) == 64
    events = list(AuditEvent.objects.order_by("seq")[before:])
    assert [event.action for event in events] == [
        "calendar_feed.issued",
        "calendar_feed.issued",
        "calendar_feed.revoked",
    ]
    assert events[1].data == {"team": "data-science", "replaces": issued.feed.pk}
    assert all(issued.token not in event.body and again.token not in event.body for event in events)
    assert CalendarFeed.objects.get(pk=issued.feed.pk).revoked_by_name == "requester"


def test_only_the_owner_manages_a_feed(requester, peer, model_risk_approver, ci, org):
    mine = calendar_feed_issue(actor=requester, owner=requester)
    for actor, owner in (
        (peer, requester),  # someone else's own feed
        (model_risk_approver, org["data-science"]),  # a team one is not a member of
        (ci.account, org["data-science"]),  # a token is not a person
        (None, requester),
    ):
        with pytest.raises(RuleDenied):
            calendar_feed_issue(actor=actor, owner=owner)
    with pytest.raises(RuleDenied) as refused:
        calendar_feed_revoke(actor=peer, feed=mine.feed)
    assert refused.value.code == "not_your_feed"
    team = calendar_feed_issue(actor=peer, owner=org["data-science"])
    calendar_feed_revoke(actor=requester, feed=team.feed)  # any member of the team
    assert CalendarFeed.objects.get(pk=team.feed.pk).is_revoked


def test_the_feeds_page_issues_an_address_once_and_revokes_it(planned, login, requester, peer):
    client = login(requester)
    page = client.get("/releases/calendar/feeds/").content.decode()
    assert "No address is issued." in page and "Data Science" in page
    issued = client.post("/releases/calendar/feeds/issue/")
    text = issued.content.decode()
    assert issued.status_code == 200
    address = re.search(r'value="(http[^"]+\.ics)"', text).group(1)
    token = address.rsplit("/", 1)[1].removesuffix(".ics")
    assert len(read_feed(token).walk("VEVENT")) == 4
    assert address not in client.get("/releases/calendar/feeds/").content.decode()
    feed = CalendarFeed.objects.get(user=requester, revoked_at__isnull=True)
    # Someone else cannot revoke it from their session.
    assert login(peer).post(f"/releases/calendar/feeds/{feed.pk}/revoke/").status_code == 403
    client = login(requester)
    revoked = client.post(f"/releases/calendar/feeds/{feed.pk}/revoke/", follow=True)
    assert "answers no more" in revoked.content.decode()
    assert Client().get(path_of(token)).status_code == 404
    team = client.post("/releases/calendar/feeds/issue/", {"team": "data-science"})
    assert team.status_code == 200 and "Data Science's calendar" in team.content.decode()
    assert client.post("/releases/calendar/feeds/issue/", {"team": "model-risk"}).status_code == 403
    assert client.post("/releases/calendar/feeds/issue/", {"team": "nope"}).status_code == 404


def test_the_feed_reads_in_the_same_queries_however_many_changes(
    envs, builds, requester, peer, clock, django_assert_max_num_queries
):
    issued = calendar_feed_issue(actor=requester, owner=requester)

    def file(count: int) -> None:
        for index in range(count):
            file_change(
                model_version=builds["1.0"],
                environment=envs["test"],
                requester=requester,
                window_start=clock.at(days=1, hours=3 * index).now,
                hours=1,
            )

    file(3)
    client = Client()
    with CaptureQueriesContext(connection) as few:
        assert client.get(path_of(issued.token)).status_code == 200
    file(27)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(path_of(issued.token))
    assert len(Calendar.from_ical(response.content).walk("VEVENT")) == 30
