"""A worker killed in the middle of a task: the message was acknowledged late (after the task),
so the broker hands it to the next worker, and the task's row lock and `emailed_at` check make
its effect happen once. Real `celery -A portal worker` processes on Redis, on the test database
(PostgreSQL: a separate process needs a database it can open)."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from celery import Celery
from django.db import connection

from portal.models import Notification
from portal.notifications import notify
from tests.conftest import TRANSACTIONAL_APPS
from tests.worker.conftest import redis_answers, wait_for
from tests.worker.killed_worker_settings import VISIBILITY_TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
# A database of its own on the Redis server: the in-thread worker tests flush theirs.
REDIS_URL = "redis://127.0.0.1:6379/13"

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the worker process needs the PostgreSQL test DB"
    ),
    pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS),
]


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class Workers:
    """Starts `celery -A portal worker` processes on one queue, each in its own process group
    so that a kill takes the whole worker."""

    def __init__(self, folder: Path, queue: str):
        self.folder, self.queue, self.running = folder, queue, []
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.worker.killed_worker_settings",
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": REDIS_URL,
            "GATEHOUSE_VAR_DIR": str(folder / "var"),
            "GATEHOUSE_TEST_MAIL_DIR": str(folder / "mail"),
        }

    def start(self, name: str) -> subprocess.Popen:
        log = (self.folder / f"{name}.log").open("w")
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "portal", "worker"),
                *(
                    "--pool=prefork",
                    "--concurrency=1",
                    "-Q",
                    self.queue,
                    "-n",
                    f"{name}@%h",
                    "--loglevel=INFO",
                ),
                *("--without-gossip", "--without-mingle", "--without-heartbeat"),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running.append(process)
        return process

    def kill(self, process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        if process.poll() is None:
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)

    def logs(self) -> str:
        return "\n".join(
            f"== {log.name}\n{log.read_text()[-3000:]}" for log in self.folder.glob("*.log")
        )


def _send(notification: Notification, queue: str) -> None:
    """Enqueue on Redis from here (this process's own app stays on its test broker)."""
    sender = Celery("sender")
    with sender.connection_for_write(REDIS_URL) as broker:
        sender.send_task(
            "portal.tasks.deliver_notification",
            args=[notification.pk],
            queue=queue,
            connection=broker,
        )


@pytest.fixture
def workers(tmp_path):
    if not redis_answers():
        pytest.skip("Redis does not answer on 127.0.0.1:6379")
    (tmp_path / "mail").mkdir()
    (tmp_path / "var").mkdir()
    running = Workers(tmp_path, queue=f"killed-{uuid.uuid4().hex[:12]}")
    yield running
    for process in running.running:
        running.kill(process, signal.SIGTERM)


def test_a_task_whose_worker_is_killed_is_redelivered_and_mails_once(workers, requester):
    mail = workers.folder / "mail"
    (mail / "hold").touch()
    [notification] = notify(
        recipients=[requester],
        key="killed-worker",
        subject="CR-7 waits for your sign-off",
        body="A change waits for you.",
        reason="You approve for Model Risk.",
    )
    _send(notification, workers.queue)

    first = workers.start("first")
    try:
        wait_for(lambda: list(mail.glob("attempt-*")), timeout=60)
    except AssertionError:
        pytest.fail(f"the first worker never ran the task\n{workers.logs()}")
    # Mid-task: the mail is being sent and the notification row is locked by the first worker.
    workers.kill(first)
    assert first.returncode == -signal.SIGKILL
    (mail / "hold").unlink()
    notification.refresh_from_db()
    assert notification.emailed_at is None
    # A worker hands unacknowledged messages out again once they are older than the visibility
    # timeout, checking at its start and then only every few minutes: start the second one
    # after that age is reached.
    time.sleep(VISIBILITY_TIMEOUT + 1)

    workers.start("second")
    try:
        wait_for(lambda: list(mail.glob("sent-*.eml")), timeout=60)
    except AssertionError:
        pytest.fail(f"the task was not redelivered\n{workers.logs()}")
    wait_for(lambda: Notification.objects.get(pk=notification.pk).emailed_at, timeout=30)
    # Past another visibility timeout: nothing else comes back for a second delivery.
    time.sleep(5)

    notification.refresh_from_db()
    assert len(list(mail.glob("attempt-*"))) == 2
    sent = list(mail.glob("sent-*.eml"))
    assert len(sent) == 1
    assert "CR-7 waits for your sign-off" in sent[0].read_text()
    assert notification.attempts == 1
    emailed_at = notification.emailed_at
    # A late duplicate of the message (the broker may deliver twice) changes nothing.
    _send(notification, workers.queue)
    time.sleep(2)
    notification.refresh_from_db()
    assert notification.emailed_at == emailed_at
    assert len(list(mail.glob("sent-*.eml"))) == 1
