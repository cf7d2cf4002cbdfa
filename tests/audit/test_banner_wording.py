"""The audit banner counts in good English: one checkpoint, two checkpoints."""

from datetime import timedelta
from types import SimpleNamespace

from django.template.loader import render_to_string
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from audit.services import audit_verify


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


def test_the_banner_counts_the_events_after_the_verification_and_says_when_the_next_runs(
    db, login, auditor, record_events
):
    record_events(3)
    audit_verify(actor=None)
    record_events(1)
    page = " ".join(login(auditor).get("/audit/").content.decode().split())
    record_events(4)
    later = " ".join(login(auditor).get("/audit/").content.decode().split())
    PeriodicTask.objects.filter(task="audit.tasks.audit_verify_and_checkpoint").update(
        enabled=False
    )
    unscheduled = " ".join(login(auditor).get("/audit/").content.decode().split())

    assert "1 event came after it and is not verified yet." in page
    assert "The next verification runs at about" in page
    assert "5 events came after it and are not verified yet." in later
    assert "No verification is scheduled: an administrator enables" in unscheduled


def test_a_verification_that_did_not_run_when_due_is_said(db, login, auditor, record_events):
    record_events(1)
    audit_verify(actor=None)
    PeriodicTask.objects.filter(task="audit.tasks.audit_verify_and_checkpoint").update(
        last_run_at=timezone.now() - timedelta(hours=3)
    )

    page = " ".join(login(auditor).get("/audit/").content.decode().split())

    assert "No event came after it." in page
    assert "has not run: are the Celery worker and beat running?" in page
