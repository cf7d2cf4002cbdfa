"""The audit trail's When column says UTC, so it shows UTC whatever the display time zone."""

from datetime import UTC

import pytest

pytestmark = pytest.mark.django_db


def test_the_when_column_is_utc_under_another_display_zone(settings, auditor, login, record_events):
    settings.TIME_ZONE = "Asia/Tokyo"
    (event,) = record_events(1)
    page = login(auditor).get("/audit/").content.decode()
    utc = event.occurred_at.astimezone(UTC)
    assert "When (UTC)" in page
    assert f">{utc:%Y-%m-%d %H:%M:%S}</time>" in page
