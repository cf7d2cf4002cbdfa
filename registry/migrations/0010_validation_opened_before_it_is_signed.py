"""A validation is opened first (naming its validator, its scope and the versions it covers)
and signed later; the validations concluded in one step before this were opened when signed."""

import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def opened_when_concluded(apps, schema_editor):
    Validation = apps.get_model("registry", "Validation")
    Validation.objects.update(opened_at=models.F("concluded_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0009_documents"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="validation",
            options={
                "ordering": [
                    models.OrderBy(models.F("concluded_at"), descending=True, nulls_first=True),
                    "-id",
                ]
            },
        ),
        migrations.AddField(
            model_name="validation",
            name="opened_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.RunPython(opened_when_concluded, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="validation",
            name="concluded_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="validation",
            name="meaning",
            field=models.CharField(blank=True, max_length=300),
        ),
        migrations.AlterField(
            model_name="validation",
            name="outcome",
            field=models.CharField(
                blank=True,
                choices=[
                    ("approved", "Approved"),
                    ("conditions", "Approved with conditions"),
                    ("rejected", "Rejected"),
                ],
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="validation",
            name="valid_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name="validation",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("concluded_at__isnull", True),
                        ("meaning", ""),
                        ("outcome", ""),
                        ("reauthenticated", False),
                        ("valid_until__isnull", True),
                    ),
                    models.Q(
                        ("concluded_at__isnull", False),
                        ("outcome__in", ["approved", "conditions", "rejected"]),
                        ("reauthenticated", True),
                        ("valid_until__isnull", False),
                    ),
                    _connector="OR",
                ),
                name="validation_open_or_signed",
            ),
        ),
    ]
