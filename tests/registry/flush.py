"""Transactional tests on SQLite reset tables with `DELETE FROM`, which the registry's guard
refuses once versions exist. `lift_guard_during_flush` makes the test flush (and only the flush)
drop the SQLite triggers first and recreate them after, in the flush's own transaction. PostgreSQL
flushes with TRUNCATE, which the row triggers do not see, so it needs nothing.

The `registry_flushable` fixture of tests/registry/conftest.py calls it; a conftest elsewhere
whose transactional tests register versions on SQLite can call it too.
"""

import importlib

guard = importlib.import_module("registry.migrations.0002_immutable_versions")


def lift_guard_during_flush() -> None:
    from django.db.backends.sqlite3.base import DatabaseWrapper

    operations = DatabaseWrapper.ops_class
    if getattr(operations.sql_flush, "lifts_registry_guard", False):
        return
    original = operations.sql_flush

    def sql_flush(self, style, tables, *args, **kwargs):
        statements = original(self, style, tables, *args, **kwargs)
        guarded = [table for table in guard.TABLES if table in tables]
        if not statements or not guarded:
            return statements
        drop = [sql for table in guarded for sql in guard.sqlite_drop(table)]
        create = [sql for table in guarded for sql in guard.sqlite_create(table)]
        return drop + list(statements) + create

    sql_flush.lifts_registry_guard = True
    operations.sql_flush = sql_flush
