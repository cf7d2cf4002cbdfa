"""Indexes for a scrape of `/metrics`: deployments counted by environment, kind and status with
an index-only scan, and the approvals of the sign-off latency's window found without reading
every sign-off."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("releases", "0014_gate_tallies")]

    operations = [
        migrations.AddIndex(
            model_name="deployment",
            index=models.Index(fields=["environment", "kind", "status"], name="deployment_status"),
        ),
        migrations.AddIndex(
            model_name="signoff",
            index=models.Index(
                condition=models.Q(("kind", "approval"), ("voided_at__isnull", True)),
                fields=["signed_at"],
                name="signoff_approval_time",
            ),
        ),
    ]
