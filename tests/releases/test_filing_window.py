"""Issue 19: the filing form suggests the next window that the environment's freezes allow,
says which time zone it reads, and takes the person's local time."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from releases.models import ChangeRequest
from releases.selectors.windows import LEAD_TIME, WINDOW_LENGTH, next_windows
from releases.services.policy import freeze_window_create
from tests.releases.test_pages import form_data

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 9, 10, tzinfo=UTC)


def test_the_next_window_starts_at_the_next_full_hour_after_the_lead_time(envs):
    start, end = next_windows([envs["prod"]], now=NOW)[envs["prod"].pk]

    assert start == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert start >= NOW + LEAD_TIME
    assert end - start == WINDOW_LENGTH


def test_the_window_skips_every_freeze_it_would_overlap(envs):
    prod = envs["prod"]
    freeze_window_create(
        actor=None, environment=prod, starts_at=NOW, ends_at=NOW + timedelta(hours=5), reason="A"
    )
    freeze_window_create(
        actor=None,
        environment=prod,
        starts_at=NOW + timedelta(hours=8),
        ends_at=NOW + timedelta(days=2, minutes=30),
        reason="Year end",
    )

    windows = next_windows([prod, envs["test"]], now=NOW)

    assert windows[prod.pk][0] == datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    assert windows[envs["test"].pk][0] == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_the_form_comes_prefilled_and_names_its_time_zone(login, requester, envs):
    response = login(requester).get("/releases/change-requests/new/", {"environment": "test"})

    form = response.context["form"]
    start, end = next_windows([envs["test"]])[envs["test"].pk]
    assert form.initial["environment"] == envs["test"]
    assert form.initial["window_start"] == start
    assert form.initial["window_end"] == end
    body = response.content.decode()
    assert "Time zone of the window" in body
    assert 'id="suggested-windows"' in body


def test_local_time_is_read_in_the_chosen_time_zone(login, requester, envs, version):
    start = (timezone.now() + timedelta(days=3)).replace(second=0, microsecond=0, tzinfo=None)
    data = form_data(
        version,
        environment=envs["prod"],
        time_zone="Asia/Tokyo",
        window_start=start.strftime("%Y-%m-%dT%H:%M"),
        window_end=(start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
    )

    login(requester).post("/releases/change-requests/new/", data)

    filed = ChangeRequest.objects.get()
    assert filed.window_start == start.replace(tzinfo=UTC) - timedelta(hours=9)


def test_an_unknown_time_zone_is_a_field_error_not_a_guess(login, requester, envs, version):
    data = form_data(version, environment=envs["prod"], time_zone="Mars/Olympus")

    response = login(requester).post("/releases/change-requests/new/", data)

    assert "time_zone" in response.context["form"].errors
    assert not ChangeRequest.objects.exists()
