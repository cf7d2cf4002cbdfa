"""Racing calls against each other: each in its own thread and database connection, released
together from a barrier."""

import threading
from collections.abc import Callable

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

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def person(username: str):
    """A persona read in the calling thread (the racing threads have their own connections)."""
    return get_user_model().objects.get(username=username)
