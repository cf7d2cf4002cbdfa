from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry.builders import build_register
from releases.builders import deploy
from releases.selectors.live import live_deployment, live_in_environment

pytestmark = pytest.mark.django_db


def versions(deployments):
    return {d.model.name: d.model_version.version for d in deployments}


def test_nothing_is_live_before_the_first_success(envs, builds, ci, clock):
    assert list(live_in_environment(environment=envs["dev"])) == []
    deploy(
        actor=ci.account,
        environment=envs["dev"],
        model_version=builds["1.0"],
        clock=clock,
        succeed=False,
    )
    assert list(live_in_environment(environment=envs["dev"])) == []
    assert live_deployment(environment=envs["dev"], model=builds["1.0"].model) is None


def test_live_and_as_of_follow_the_successes(envs, builds, ci, clock, fraud):
    first = deploy(
        actor=ci.account, environment=envs["dev"], model_version=builds["1.0"], clock=clock
    )
    clock.advance(days=2)
    second = deploy(
        actor=ci.account, environment=envs["dev"], model_version=builds["1.1"], clock=clock
    )
    dev = envs["dev"]
    assert versions(live_in_environment(environment=dev)) == {"fraud-score": "1.1"}
    assert live_deployment(environment=dev, model=fraud) == second
    assert live_deployment(environment=dev, model=fraud, at=first.succeeded_at) == first
    assert live_deployment(environment=dev, model=fraud, at=second.succeeded_at) == second
    just_before = second.succeeded_at - timedelta(seconds=1)
    assert versions(live_in_environment(environment=dev, at=just_before)) == {"fraud-score": "1.0"}
    before_all = first.succeeded_at - timedelta(seconds=1)
    assert list(live_in_environment(environment=dev, at=before_all)) == []
    # Another environment is untouched.
    assert list(live_in_environment(environment=envs["test"])) == []


def test_live_lists_each_model_once_per_environment(envs, org, ci, clock):
    models = [f"model-{n}" for n in range(3)]
    for model in models:
        for version in ("1", "2"):
            deploy(
                actor=ci.account,
                environment=envs["dev"],
                model_version=build_register(model, version),
                clock=clock,
            )
    live = list(live_in_environment(environment=envs["dev"]))
    assert [d.model.name for d in live] == ["model-0", "model-1", "model-2"]
    assert {d.model_version.version for d in live} == {"2"}


def test_live_queries_stay_flat(envs, org, ci, clock):
    for n in range(3):
        deploy(
            actor=ci.account,
            environment=envs["dev"],
            model_version=build_register(f"m-{n}", "1"),
            clock=clock,
        )
    with CaptureQueriesContext(connection) as few:
        list(live_in_environment(environment=envs["dev"]))
    for n in range(3, 12):
        deploy(
            actor=ci.account,
            environment=envs["dev"],
            model_version=build_register(f"m-{n}", "1"),
            clock=clock,
        )
    with CaptureQueriesContext(connection) as many:
        assert len(list(live_in_environment(environment=envs["dev"]))) == 12
    assert len(few.captured_queries) == len(many.captured_queries)


def test_the_registry_hook_says_where_each_version_is_live(envs, builds, ci, clock, fraud):
    from registry import hooks

    deploy(actor=ci.account, environment=envs["dev"], model_version=builds["1.0"], clock=clock)
    deploy(actor=ci.account, environment=envs["dev"], model_version=builds["1.1"], clock=clock)
    versions = list(fraud.versions.all())
    with CaptureQueriesContext(connection) as captured:
        where = hooks.live_environments(versions)
    assert where == {builds["1.1"].pk: ["dev"]}
    assert len(captured.captured_queries) == 1
