"""The change calendar (week and month), its iCalendar feeds and the change advisory board's
agenda. Thin: `releases.selectors.calendar` and `releases.selectors.cab` read, the services
issue and revoke feeds."""

from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from icalendar import Calendar, Event

from portal.exceptions import DomainError, RuleDenied
from portal.models import Team
from releases.models import CalendarFeed, Environment
from releases.selectors.cab import cab_agenda
from releases.selectors.calendar import (
    CalendarEntry,
    CalendarFilters,
    EntryKind,
    calendar_feed_by_token,
    calendar_feed_entries,
    calendar_feeds_of,
    calendar_page,
)
from releases.services import calendar as services

CAB_DAYS_DEFAULT = 7
CAB_DAYS_MOST = 31


def _day(text: str, default: date) -> date:
    """A day from the address (YYYY-MM-DD); anything else, or a day so far off that a month
    from it does not exist, is the default."""
    try:
        day = date.fromisoformat(text) if len(text) == 10 else default
    except ValueError:
        return default
    return day if date.min.year < day.year < date.max.year else default


@require_GET
def calendar(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", "")
    filters = CalendarFilters(
        environment=request.GET.get("environment", "").strip(),
        team=request.GET.get("team", "").strip(),
        model=request.GET.get("model", "").strip(),
        kind=kind if kind in EntryKind.values else "",
    )
    page = calendar_page(
        view=request.GET.get("view", "week"),
        around=_day(request.GET.get("date", ""), timezone.localdate()),
        filters=filters,
        group=request.GET.get("group", "environment"),
    )
    return render(
        request,
        "releases/calendar.html",
        {
            "page": page,
            "filters": filters,
            "kinds": EntryKind.choices,
            "environments": Environment.objects.order_by("rank"),
            "teams": Team.objects.order_by("name"),
            "time_zone": timezone.get_current_timezone_name(),
        },
    )


def _feeds_page(request: HttpRequest, *, issued: services.IssuedFeed | None = None, status=200):
    own, teams = calendar_feeds_of(request.user)
    address = None
    if issued is not None:
        path = reverse("releases:calendar-feed", args=[issued.token])
        address = f"{settings.PORTAL_BASE_URL}{path}"
    return render(
        request,
        "releases/calendar_feeds.html",
        {"own": own, "teams": teams, "issued": issued, "address": address},
        status=status,
    )


@require_GET
def calendar_feeds(request: HttpRequest) -> HttpResponse:
    return _feeds_page(request)


@require_POST
def calendar_feed_issue(request: HttpRequest) -> HttpResponse:
    """A new address for the person's calendar, or for a team's (`team`), shown once."""
    slug = request.POST.get("team", "")
    owner = get_object_or_404(Team, slug=slug) if slug else request.user
    try:
        issued = services.calendar_feed_issue(actor=request.user, owner=owner, request=request)
    except RuleDenied as refusal:
        raise PermissionDenied(refusal.detail) from refusal
    return _feeds_page(request, issued=issued)


@require_POST
def calendar_feed_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    feed = get_object_or_404(CalendarFeed, pk=pk)
    try:
        services.calendar_feed_revoke(actor=request.user, feed=feed, request=request)
    except RuleDenied as refusal:
        raise PermissionDenied(refusal.detail) from refusal
    except DomainError as refusal:
        messages.error(request, refusal.detail)
    else:
        messages.success(request, "The calendar feed is revoked: its address answers no more.")
    return redirect("releases:calendar-feeds")


def _event(entry: CalendarEntry, stamp: datetime) -> Event:
    event = Event()
    event.add("uid", f"{entry.uid}@{settings.PORTAL_BASE_URL.split('://', 1)[-1]}")
    event.add("dtstamp", stamp)
    event.add("dtstart", entry.starts_at)
    event.add("dtend", entry.ends_at)
    event.add("summary", entry.summary)
    event.add("description", f"{entry.description}\n{settings.PORTAL_BASE_URL}{entry.url}")
    event.add("url", f"{settings.PORTAL_BASE_URL}{entry.url}")
    event.add("categories", [entry.kind_label])
    if entry.environment:
        event.add("location", entry.environment)
    return event


@login_not_required
@require_GET
def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """The iCalendar feed behind a secret address: read-only, no session needed; an unknown or
    revoked address is not found."""
    feed = calendar_feed_by_token(token)
    if feed is None:
        raise Http404("No calendar feed has this address.")
    owner = feed.team.name if feed.team_id else feed.user.get_username()
    ical = Calendar()
    ical.add("prodid", "-//Gatehouse//Change calendar//EN")
    ical.add("version", "2.0")
    ical.add("calscale", "GREGORIAN")
    ical.add("method", "PUBLISH")
    ical.add("x-wr-calname", f"Gatehouse: {owner}")
    now = timezone.now()
    for entry in calendar_feed_entries(feed, now=now).entries:
        ical.add_component(_event(entry, now))
    response = HttpResponse(ical.to_ical(), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="gatehouse.ics"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def cab(request: HttpRequest) -> HttpResponse:
    """The agenda of the weekly change advisory board: `from` (a day, default today) and `days`
    (default a week)."""
    first = _day(request.GET.get("from", ""), timezone.localdate())
    days = request.GET.get("days", "")
    wanted = int(days) if days.isascii() and days.isdigit() and len(days) <= 2 else 0
    length = wanted if 1 <= wanted <= CAB_DAYS_MOST else CAB_DAYS_DEFAULT
    start = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    end = timezone.make_aware(datetime.combine(first + timedelta(days=length), datetime.min.time()))
    agenda = cab_agenda(start=start, end=end)
    return render(
        request,
        "releases/cab.html",
        {
            "agenda": agenda,
            "first": first,
            "last": first + timedelta(days=length - 1),
            "days": length,
            "previous": first - timedelta(days=length),
            "next": first + timedelta(days=length),
            "time_zone": timezone.get_current_timezone_name(),
        },
    )
