"""Enqueue Celery work after the transaction commits, and never fail a request over it.

If the broker is down at commit time the error is logged and nothing is lost: every task here is
backed by a database row (the outbox) that a periodic sweep picks up once the broker is back.
"""

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def _send(task, args: tuple) -> None:
    try:
        task.apply_async(args=args, retry=False)
    except Exception:  # the broker may be unreachable; the sweep delivers later
        logger.warning(
            "Could not enqueue %s%r; the outbox sweep will retry.", task.name, args, exc_info=True
        )


def enqueue_on_commit(task, *args) -> None:
    transaction.on_commit(lambda: _send(task, args))
