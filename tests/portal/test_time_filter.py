"""Relative and absolute times side by side, with the time zone, on every main page."""

from datetime import UTC, datetime, timedelta

import pytest
from django.template import Context, Template
from django.utils import timezone

from portal.templatetags.gatehouse_time import when

NOW = datetime(2026, 11, 26, 14, 2, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (
            NOW - timedelta(days=3, hours=2),
            '3\xa0days ago · <span class="absolute">2026-11-23 12:02 UTC</span>',
        ),
        (
            NOW + timedelta(hours=5, minutes=1),
            'in 5\xa0hours · <span class="absolute">2026-11-26 19:03 UTC</span>',
        ),
        (
            NOW - timedelta(seconds=20),
            'just now · <span class="absolute">2026-11-26 14:02 UTC</span>',
        ),
    ],
)
def test_relative_then_absolute_with_the_zone(moment, text):
    html = when(moment, NOW)
    assert f">{text}</time>" in html
    assert f'datetime="{moment.isoformat(timespec="seconds")}"' in html
    assert 'title="2026-11-' in html


def test_the_display_time_zone_is_named(settings):
    settings.TIME_ZONE = "Europe/Zurich"
    html = Template("{% load gatehouse_time %}{{ moment|when }}").render(
        Context({"moment": NOW - timedelta(days=400)})
    )
    assert '· <span class="absolute">2025-10-22 16:02 CEST</span></time>' in html
    assert 'datetime="2025-10-22T14:02:30+00:00"' in html


def test_nothing_for_no_time():
    assert Template("{% load gatehouse_time %}[{{ missing|when }}]").render(Context({})) == "[]"


def test_a_deadline_is_past_once_now_is_after_it():
    template = Template("{% load gatehouse_time %}{{ due|is_past }}")
    assert template.render(Context({"due": timezone.now() - timedelta(seconds=1)})) == "True"
    assert template.render(Context({"due": timezone.now() + timedelta(hours=1)})) == "False"
    assert template.render(Context({"due": None})) == "False"
