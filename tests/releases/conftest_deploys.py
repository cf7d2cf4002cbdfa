"""Fixtures for the gate, deployment, rollback and live tests: the demo's three environments, a
model with builds and a controlled clock. Test modules load it with `pytest_plugins`."""

import pytest
from django.utils import timezone

from registry.models import ModelVersion, RegisteredModel
from releases.models import Environment
from tests.releases.deploy_helpers import Clock, make_build, make_environment, make_model


@pytest.fixture
def clock() -> Clock:
    return Clock(now=timezone.now().replace(microsecond=0))


@pytest.fixture
def envs(org) -> dict[str, Environment]:
    """dev (no change request), test (peer review only), prod (peer review, three teams, seven
    days of soak in test), as the demo sets them up."""
    dev = make_environment("dev", 1, needs_change_request=False, needs_peer_review=False)
    test = make_environment("test", 2, needs_change_request=True)
    prod = make_environment(
        "prod",
        3,
        needs_change_request=True,
        teams=[org["model-risk"], org["release-management"], org["platform-operations"]],
        soak_source=test,
        soak_days=7,
    )
    return {"dev": dev, "test": test, "prod": prod}


@pytest.fixture
def fraud(org) -> RegisteredModel:
    return make_model("fraud-score", org["data-science"])


@pytest.fixture
def builds(fraud) -> dict[str, ModelVersion]:
    return {version: make_build(fraud, version) for version in ("1.0", "1.1", "1.2")}
