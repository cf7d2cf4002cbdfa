"""Running totals of the gate's decisions for `/metrics`, so that a scrape reads a few rows and
not every decision on the trail (docs/operations.md, Metrics). The totals start from the
decisions already recorded."""

from collections import Counter

from django.db import migrations, models


def count_recorded_decisions(apps, schema_editor):
    GateDecision = apps.get_model("releases", "GateDecision")
    GateTally = apps.get_model("releases", "GateTally")
    totals: Counter = Counter()
    decisions = GateDecision.objects.values_list(
        "environment__name", "purpose", "allowed", "reasons"
    ).order_by()
    for environment, purpose, allowed, reasons in decisions.iterator(chunk_size=5000):
        environment = environment or ""
        totals[(environment, purpose, allowed, "")] += 1
        for code in {reason.get("code", "") for reason in reasons or []} - {""}:
            totals[(environment, purpose, allowed, code)] += 1
    GateTally.objects.bulk_create(
        [
            GateTally(environment=env, purpose=purpose, allowed=allowed, code=code, count=count)
            for (env, purpose, allowed, code), count in totals.items()
        ],
        batch_size=1000,
    )


class Migration(migrations.Migration):
    dependencies = [("releases", "0013_change_request_retires_model")]

    operations = [
        migrations.CreateModel(
            name="GateTally",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "environment",
                    models.CharField(
                        blank=True,
                        help_text="Its name then; empty when none was found.",
                        max_length=50,
                    ),
                ),
                (
                    "purpose",
                    models.CharField(
                        choices=[
                            ("check", "Gate check"),
                            ("deployment", "Deployment start"),
                            ("gitlab_approval", "GitLab deployment approval"),
                            ("github_rule", "GitHub deployment protection rule"),
                            ("admission", "Kubernetes admission"),
                        ],
                        max_length=16,
                    ),
                ),
                ("allowed", models.BooleanField()),
                ("code", models.CharField(blank=True, max_length=64)),
                ("count", models.PositiveBigIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("environment", "purpose", "allowed", "code"),
                        name="gate_tally_key",
                    )
                ],
            },
        ),
        migrations.RunPython(count_recorded_decisions, migrations.RunPython.noop),
    ]
