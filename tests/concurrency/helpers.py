"""Racing calls against each other: each in its own thread and database connection, released
together from a barrier."""

import threading
from collections.abc import Callable
from functools import partial

from django.contrib.auth import get_user_model
from django.db import connections


def race(calls: list[Callable]) -> tuple[list, list[BaseException]]:
    """Run `calls` at once; returns what they returned and what they raised, each in the order
    they finished."""
    barrier = threading.Barrier(len(calls))
    results, errors = [], []

    def run(call: Callable) -> None:
        try:
            barrier.wait()
            results.append(call())
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    together(*(partial(run, call) for call in calls))
    return results, errors


def together(*targets: Callable[[], None]) -> None:
    """Run each target in a thread of its own and wait for all of them."""
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def person(username: str):
    """A persona read in the calling thread (the racing threads have their own connections)."""
    return get_user_model().objects.get(username=username)
