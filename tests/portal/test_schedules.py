import pytest
from django_celery_beat.models import PeriodicTask

from portal.celery import app as celery_app
from portal.schedules import SCHEDULES, install_schedules

pytestmark = pytest.mark.django_db


def test_migrate_installs_every_periodic_job():
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert {name for name, _, _ in SCHEDULES} <= names


def test_every_scheduled_task_exists():
    celery_app.loader.import_default_modules()
    missing = [task for _, task, _ in SCHEDULES if task not in celery_app.tasks]
    assert missing == []


def test_an_administrators_edit_survives_the_next_migrate():
    job = PeriodicTask.objects.get(task="releases.tasks.poll_health")
    job.enabled = False
    job.save()
    assert install_schedules() == 0
    job.refresh_from_db()
    assert job.enabled is False


def test_a_deleted_job_comes_back():
    PeriodicTask.objects.filter(task="audit.tasks.audit_verify_and_checkpoint").delete()
    assert install_schedules() == 1
    restored = PeriodicTask.objects.get(task="audit.tasks.audit_verify_and_checkpoint")
    assert restored.interval.every == 3600
