from importlib import import_module

from django.db import migrations, models

immutable = import_module("registry.migrations.0002_immutable_versions")
TABLE = "registry_modelversion"


def guard_again_on_sqlite(apps, schema_editor):
    """SQLite adds this column by rebuilding the table, which drops its triggers: put the
    guard that registered versions never change back (PostgreSQL keeps its triggers)."""
    if schema_editor.connection.vendor == "sqlite":
        for statement in immutable.sqlite_drop(TABLE) + immutable.sqlite_create(TABLE):
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0007_model_inventory_and_validations"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelversion",
            name="model_card",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.RunPython(guard_again_on_sqlite, migrations.RunPython.noop),
    ]
