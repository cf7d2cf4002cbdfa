"""A registered version never changes: the database refuses it even when code tries."""

import pytest
from django.db import DatabaseError, connection, transaction

from registry.builders import digest
from registry.models import DatasetVersion, ModelVersion
from tests.registry import helpers


@pytest.fixture
def version(model, dataset):
    return helpers.register_version()


def refused(operation) -> bool:
    try:
        with transaction.atomic():
            operation()
    except DatabaseError as error:
        return "never change" in str(error)
    return False


def _delete_in_sql(table: str, pk: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [pk])


@pytest.mark.django_db
def test_database_refuses_to_update_or_delete_a_version(version):
    assert refused(
        lambda: ModelVersion.objects.filter(pk=version.pk).update(artifact_sha256="0" * 64)
    )
    # In SQL: the ORM would stop first at the version's artifact checks (PROTECT).
    assert refused(lambda: _delete_in_sql("registry_modelversion", version.pk))
    version.refresh_from_db()
    assert version.artifact_sha256 == digest("artifact 1.0.0")


@pytest.mark.django_db
def test_database_refuses_to_update_or_delete_a_dataset_version(version, dataset):
    assert refused(lambda: DatasetVersion.objects.filter(pk=dataset.pk).update(rows=1))
    assert refused(lambda: DatasetVersion.objects.filter(pk=dataset.pk).delete())


@pytest.mark.django_db
def test_database_refuses_to_relink_training_data(version, dataset):
    other = helpers.register_dataset(version="2026-12-01", sha256=digest("december"))
    link = ModelVersion.datasets.through.objects.get(modelversion=version)
    assert refused(lambda: ModelVersion.datasets.through.objects.filter(pk=link.pk).delete())
    assert refused(
        lambda: ModelVersion.datasets.through.objects.filter(pk=link.pk).update(
            datasetversion=other
        )
    )
    assert list(version.datasets.all()) == [dataset]
