"""The audit banner counts in good English: one checkpoint, two checkpoints."""

from types import SimpleNamespace

from django.template.loader import render_to_string
from django.utils import timezone


def banner(events, checkpoints):
    verification = SimpleNamespace(
        ok=True, finished_at=timezone.now(), events_checked=events, checkpoints_checked=checkpoints
    )
    return " ".join(
        render_to_string("audit/_banner.html", {"last_verification": verification}).split()
    )


def test_one_checkpoint_and_one_event_are_singular():
    text = banner(1, 1)

    assert "1 event and 1 signed checkpoint checked." in text


def test_several_are_plural():
    assert "11 events and 2 signed checkpoints checked." in banner(11, 2)
