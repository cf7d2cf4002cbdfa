"""Each registered model remembers its highest plain-number version, so a build registered
without a version is numbered from that row and not from a read of every version (issue 13)."""

import re

from django.db import migrations, models

PLAIN_NUMBER = re.compile(r"^[1-9][0-9]{0,17}$")


def record_highest_numbers(apps, schema_editor):
    RegisteredModel = apps.get_model("registry", "RegisteredModel")
    ModelVersion = apps.get_model("registry", "ModelVersion")
    highest: dict[int, int] = {}
    for model_id, version in ModelVersion.objects.values_list("model_id", "version").iterator():
        if PLAIN_NUMBER.match(version):
            highest[model_id] = max(highest.get(model_id, 0), int(version))
    for model_id, number in highest.items():
        RegisteredModel.objects.filter(pk=model_id).update(highest_version_number=number)


class Migration(migrations.Migration):
    dependencies = [("registry", "0003_pipeline_statuses")]

    operations = [
        migrations.AddField(
            model_name="registeredmodel",
            name="highest_version_number",
            field=models.PositiveBigIntegerField(
                default=0,
                editable=False,
                help_text="The highest plain-number version (1, 2, 3 …) registered for this model.",
            ),
        ),
        migrations.RunPython(record_highest_numbers, migrations.RunPython.noop),
    ]
