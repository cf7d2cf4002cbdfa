"""A real Celery worker, in a thread of the test process, on a real broker: the embedded
file-system transport, and Redis when it answers on 127.0.0.1:6379."""

import socket
import time

import kombu.pools
import pytest
from celery.contrib.testing.worker import start_worker

from portal.celery import app as celery_app


def redis_answers() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


def point_celery_at(broker_url: str, transport_options: dict) -> None:
    celery_app.conf.broker_url = broker_url
    celery_app.conf.broker_transport_options = transport_options
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    kombu.pools.reset()


@pytest.fixture(params=["filesystem", "redis"])
def broker(request, tmp_path, monkeypatch):
    """Switch the app to a real broker for the test; yields its URL."""
    # Celery reads CELERY_BROKER_URL from the environment before its own configuration.
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    if request.param == "redis":
        if not redis_answers():
            pytest.skip("Redis does not answer on 127.0.0.1:6379")
        url, options = "redis://127.0.0.1:6379/15", {}
    else:
        queue, control = tmp_path / "queue", tmp_path / "control"
        queue.mkdir()
        control.mkdir()
        url = "filesystem://"
        options = {
            "data_folder_in": str(queue),
            "data_folder_out": str(queue),
            "control_folder": str(control),
        }
    saved = (celery_app.conf.broker_url, dict(celery_app.conf.broker_transport_options or {}))
    point_celery_at(url, options)
    if request.param == "redis":
        with celery_app.connection_for_write() as connection:
            connection.default_channel.client.flushdb()
    yield url
    point_celery_at(*saved)


@pytest.fixture
def worker(broker):
    with start_worker(
        celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="WARNING"
    ) as running:
        yield running


def wait_for(condition, timeout: float = 30.0, interval: float = 0.1):
    """Poll until `condition()` is truthy; the worker runs in its own thread."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not reached within {timeout}s")
