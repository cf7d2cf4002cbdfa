"""Fixtures for the gate, deployment, rollback and live tests: the demo's three environments, a
model with builds, the sign-off personas and a controlled clock. Test modules load it with
`pytest_plugins`; in tests/releases the change request fixtures' `envs` takes precedence and is
built the same way."""

import pytest
from django.utils import timezone

from registry.models import ModelVersion, RegisteredModel
from releases.models import Environment
from tests.releases import helpers
from tests.releases.deploy_helpers import Clock, make_build, make_model


@pytest.fixture
def clock() -> Clock:
    return Clock(now=timezone.now().replace(microsecond=0))


@pytest.fixture
def django_clock(monkeypatch, clock) -> Clock:
    """Pages and the API take no time from their caller, so tests that move time through them
    move Django's clock with the test clock."""
    monkeypatch.setattr(timezone, "now", lambda: clock.now)
    return clock


@pytest.fixture
def envs(org) -> dict[str, Environment]:
    """dev (no change request), test (peer review only), prod (peer review, three teams, seven
    days of soak in test)."""
    return helpers.make_environments(org)


@pytest.fixture
def fraud(org) -> RegisteredModel:
    return make_model("fraud-score")


@pytest.fixture
def builds(fraud) -> dict[str, ModelVersion]:
    return {version: make_build(fraud, version) for version in ("1.0", "1.1", "1.2")}


@pytest.fixture
def prod_signers(peer, model_risk_approver, release_approver, platform_approver) -> list:
    """Peer review, then one approver per approval team of prod."""
    return [peer, model_risk_approver, release_approver, platform_approver]
