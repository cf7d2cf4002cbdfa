"""The database itself refuses to rewrite the trail.

PostgreSQL: row triggers reject UPDATE and DELETE, a statement trigger rejects TRUNCATE; all are
ENABLE ALWAYS so `session_replication_role = replica` does not silence them. SQLite: RAISE(ABORT)
on UPDATE and DELETE. Only a superuser who drops or disables the triggers can edit, and the hash
chain and signed checkpoints then show where.
"""

from django.db import migrations

TABLES = ["audit_auditevent", "audit_auditcheckpoint"]

POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_reject_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit trail is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""


def postgres_statements(table):
    return [
        f"CREATE TRIGGER {table}_no_rewrite BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION audit_reject_rewrite()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_rewrite()",
        f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_rewrite",
        f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_truncate",
    ]


def sqlite_statements(table):
    return [
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'audit trail is append-only: UPDATE on {table} is not allowed'); END",
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'audit trail is append-only: DELETE on {table} is not allowed'); END",
    ]


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = [POSTGRES_FUNCTION]
        for table in TABLES:
            statements += postgres_statements(table)
    elif vendor == "sqlite":
        statements = [s for table in TABLES for s in sqlite_statements(table)]
    else:
        raise RuntimeError(f"No append-only guard for the {vendor} database.")
    for statement in statements:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, migrations.RunPython.noop)]
