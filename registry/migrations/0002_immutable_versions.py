"""A registered model version, a dataset version and the link between them never change.

The services have no update path; these triggers make the database refuse one too. PostgreSQL:
row triggers reject UPDATE and DELETE, ENABLE ALWAYS so `session_replication_role = replica`
does not silence them. SQLite: RAISE(ABORT) on UPDATE and DELETE. TRUNCATE stays possible on
PostgreSQL (an owner's deliberate act, and how transactional tests reset the tables); on SQLite a
transactional test that registered versions cannot be flushed, so such tests run on PostgreSQL.
"""

from django.db import migrations

TABLES = ["registry_modelversion", "registry_datasetversion", "registry_modelversion_datasets"]

POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION registry_reject_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'registered versions never change: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""


def sqlite_create(table):
    return [
        f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'registered versions never change: "
        f"{operation} on {table} is not allowed'); END"
        for operation in ("UPDATE", "DELETE")
    ]


def sqlite_drop(table):
    return [f"DROP TRIGGER IF EXISTS {table}_no_{operation}" for operation in ("update", "delete")]


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = []
    if vendor == "postgresql":
        statements.append(POSTGRES_FUNCTION)
        for table in TABLES:
            statements += [
                f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION registry_reject_rewrite()",
                f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_immutable",
            ]
    elif vendor == "sqlite":
        statements = [statement for table in TABLES for statement in sqlite_create(table)]
    else:
        raise RuntimeError(f"No immutability guard for the {vendor} database.")
    for statement in statements:
        schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = []
    if vendor == "postgresql":
        statements = [f"DROP TRIGGER IF EXISTS {table}_immutable ON {table}" for table in TABLES]
        statements.append("DROP FUNCTION IF EXISTS registry_reject_rewrite()")
    elif vendor == "sqlite":
        statements = [statement for table in TABLES for statement in sqlite_drop(table)]
    for statement in statements:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
