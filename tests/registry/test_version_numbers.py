"""Builds registered without a version are numbered from the model's row: the next number after
its highest plain-number version, at the same cost however long the model's history."""

import importlib

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry import services
from registry.builders import commit_id, digest
from registry.models import ModelVersion, RegisteredModel
from tests.registry import helpers

pytestmark = pytest.mark.django_db


def build(n: int, **overrides) -> dict:
    """The payload of CI build `n`: its own commit, pipeline and artifact, no version."""
    payload = {
        "version": "",
        "commit_sha": commit_id(f"commit {n}"),
        "build_id": f"build-{n}",
        "artifact_sha256": digest(f"artifact {n}"),
        "datasets": [],
    }
    return helpers.version_payload(**{**payload, **overrides})


def register(n: int, **overrides) -> ModelVersion:
    version, _ = services.model_version_register(
        actor=None, model="credit-scoring", **build(n, **overrides)
    )
    return version


def test_builds_without_a_version_are_numbered_one_after_another(model):
    assert [register(n).version for n in range(1, 4)] == ["1", "2", "3"]
    assert register(2).version == "2"  # the retry of build 2 finds its version
    assert RegisteredModel.objects.get(pk=model.pk).highest_version_number == 3


def test_numbering_continues_after_the_highest_plain_number(model):
    register(1)
    register(2, version="7")
    for n, name in enumerate(("1.4.0", "08", "v9", "99999999999999999999"), start=10):
        register(n, version=name)
    assert register(3).version == "8"


def test_named_versions_do_not_take_numbers(model):
    register(1, version="1.0.0")
    register(2, version="2.0.0")
    assert register(3).version == "1"


def test_a_number_held_by_a_row_loaded_outside_the_services_is_skipped(model):
    register(1)
    first = ModelVersion.objects.get(model=model)
    # As a restore or a bulk load would: the row is there, the model's number did not move.
    ModelVersion.objects.create(
        model=model,
        version="2",
        repository=first.repository,
        commit_sha=commit_id("restored"),
        build_id="restored",
        artifact_uri="s3://models/restored.pkl",
        artifact_sha256=digest("restored"),
        created_by_name="restore",
    )
    assert register(3).version == "3"


def test_the_migration_records_each_models_highest_number(model):
    other = helpers.register_model(name="fraud-detection")
    for n, name in enumerate(["4", "12", "12.1", "013"], start=1):
        register(n, version=name)
    RegisteredModel.objects.update(highest_version_number=0)
    migration = importlib.import_module("registry.migrations.0004_version_numbers")
    migration.record_highest_numbers(apps, None)
    assert RegisteredModel.objects.get(pk=model.pk).highest_version_number == 12
    assert RegisteredModel.objects.get(pk=other.pk).highest_version_number == 0


def _registration_queries(n: int) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert register(n).version == str(n)
    return [query["sql"] for query in captured.captured_queries]


def test_numbering_costs_the_same_at_10_and_at_200_versions(model):
    for n in range(1, 10):
        register(n)
    at_10 = _registration_queries(10)
    for n in range(11, 200):
        register(n)
    at_200 = _registration_queries(200)
    assert len(at_10) == len(at_200)
    # Every read of the model's versions is a probe of one row, never the list of its versions.
    reads = [sql for sql in at_200 if sql.startswith("SELECT") and "registry_modelversion" in sql]
    assert reads
    assert all("LIMIT 1" in sql for sql in reads), reads
