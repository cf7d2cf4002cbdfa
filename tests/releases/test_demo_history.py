"""The demo's deployment history: weeks of releases through the services, a rollback among
them, and nothing added when the demo is loaded again."""

from io import StringIO

import pytest
from django.core.management import call_command

from releases.models import Deployment, DeploymentKind, DeploymentStatus, Environment, GateDecision
from releases.selectors.live import live_in_environment

pytestmark = pytest.mark.django_db


def test_the_demo_history_is_complete_and_loaded_once(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    history = Deployment.objects.order_by("pk").values_list("pk", "status", "succeeded_at")
    call_command("seed_demo", stdout=StringIO())
    first = list(history)
    call_command("seed_demo", stdout=StringIO())
    assert list(history) == first

    live = {
        env.name: {d.model.name: d for d in live_in_environment(environment=env)}
        for env in Environment.objects.all()
    }
    assert set(live) == {"dev", "test", "prod"}
    assert all(len(models) == 3 for models in live.values())
    rollback = live["prod"]["fraud-detection"]
    assert rollback.kind == DeploymentKind.ROLLBACK
    assert rollback.rollback_of.status == DeploymentStatus.ROLLED_BACK
    assert Deployment.objects.filter(status=DeploymentStatus.FAILED).exists()
    # Every deployment start went through the gate, and the span covers weeks.
    starts = Deployment.objects.filter(kind=DeploymentKind.DEPLOY)
    assert GateDecision.objects.filter(deployment__in=starts).count() == starts.count()
    span = max(d[2] for d in first if d[2]) - min(d[2] for d in first if d[2])
    assert span.days >= 35
