"""Read scale-out for auditors: the audit app's reads (auditor pages, the audit API, exports,
verification outside a write) go to the `replica` alias when `DATABASE_REPLICA_URL` configures
one. Everything else, and every write, stays on the primary (docs/deploy.md)."""

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

REPLICA = "replica"
REPLICATED_APPS = frozenset({"audit"})


class AuditReplicaRouter:
    def db_for_read(self, model: type[Model], **hints) -> str | None:
        if model._meta.app_label not in REPLICATED_APPS or REPLICA not in settings.DATABASES:
            return None
        # A read inside a transaction on the primary is part of a write: `audit_record` reads the
        # chain's tail under the append lock there, and a replica that lags would hand it a stale
        # tail (a broken link). Such reads stay where the transaction is.
        if connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return None
        return REPLICA

    def db_for_write(self, model: type[Model], **hints) -> str | None:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Model, obj2: Model, **hints) -> bool | None:
        # The replica holds the same rows as the primary, so objects read from either relate.
        return True

    def allow_migrate(self, db: str, app_label: str, **hints) -> bool | None:
        # The replica gets its schema by replication, never by `migrate`.
        return db != REPLICA
