"""The demo's deployment history: weeks of releases through the services, a rollback among
them, and nothing added when the demo is loaded again."""

from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command

from registry.models import RegisteredModel
from releases.models import (
    ChangeRequest,
    Deployment,
    DeploymentKind,
    DeploymentStatus,
    Environment,
    GateDecision,
)
from releases.selectors.live import live_in_environment
from releases.services.gate import gate_evaluate
from releases.states import State

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

    # A newcomer sees the soak rule at work: churn-forecast 0.2.1 was live in test for a day
    # before 0.2.0 went back, so its approved production change waits, with that evidence.
    blocked = ChangeRequest.objects.get(title="Churn forecast 0.2.1 to production")
    assert blocked.state == State.APPROVED
    soak = gate_evaluate(
        environment="prod", model="churn-forecast", version="0.2.1", change_request=blocked
    ).question.soak
    assert soak.started_at is not None and soak.ended_at is not None
    assert soak.earliest_allowed_at is None and not soak.holds

    # Model risk: prod takes only validated builds; fraud-detection 1.1.0's validation left a
    # high finding past its date, so its production change is held for it; the legacy
    # scorecard is retired; credit-scoring's review falls due within a month.
    fraud = ChangeRequest.objects.get(
        title="Fraud detection 1.1.0: merchant features and 0.1% alert threshold"
    )
    held = gate_evaluate(
        environment="prod", model="fraud-detection", version="1.1.0", change_request=fraud
    )
    assert "findings_overdue" in held.codes()
    assert "validation_missing" not in held.codes()
    retired = gate_evaluate(environment="dev", model="legacy-scorecard", version="1.0")
    assert "model_retired" in retired.codes()
    due = RegisteredModel.objects.get(name="credit-scoring").next_validation_due
    assert due is not None and (due - date.today()).days <= 31
