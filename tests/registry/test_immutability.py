"""A registered version never changes: the database refuses it even when code tries."""

import threading

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from registry import services
from registry.models import DatasetVersion, ModelVersion
from tests.conftest import TRANSACTIONAL_APPS
from tests.registry import helpers

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


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


@pytest.mark.django_db
def test_database_refuses_to_update_or_delete_a_version(version):
    assert refused(
        lambda: ModelVersion.objects.filter(pk=version.pk).update(artifact_sha256="0" * 64)
    )
    assert refused(lambda: ModelVersion.objects.filter(pk=version.pk).delete())
    version.refresh_from_db()
    assert version.artifact_sha256 == helpers.digest("artifact 1.0.0")


@pytest.mark.django_db
def test_database_refuses_to_update_or_delete_a_dataset_version(version, dataset):
    assert refused(lambda: DatasetVersion.objects.filter(pk=dataset.pk).update(rows=1))
    assert refused(lambda: DatasetVersion.objects.filter(pk=dataset.pk).delete())


@pytest.mark.django_db
def test_database_refuses_to_relink_training_data(version, dataset):
    other = helpers.register_dataset(version="2026-12-01", sha256=helpers.digest("december"))
    link = ModelVersion.datasets.through.objects.get(modelversion=version)
    assert refused(lambda: ModelVersion.datasets.through.objects.filter(pk=link.pk).delete())
    assert refused(
        lambda: ModelVersion.datasets.through.objects.filter(pk=link.pk).update(
            datasetversion=other
        )
    )
    assert list(version.datasets.all()) == [dataset]


@pytest.mark.skipif(not ON_POSTGRES, reason="row locks and parallel writers need PostgreSQL")
@pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)
def test_concurrent_identical_registrations_end_with_one_record(org):
    helpers.register_model()
    results, errors = [], []
    barrier = threading.Barrier(6)

    def register(kind):
        try:
            barrier.wait()
            if kind == "dataset":
                results.append(
                    services.dataset_version_register(actor=None, **helpers.dataset_payload())
                )
            else:
                results.append(
                    services.model_version_register(
                        actor=None,
                        model="credit-scoring",
                        **helpers.version_payload(datasets=[], version=""),
                    )
                )
        except Exception as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=register, args=(kind,))
        for kind in ["dataset"] * 3 + ["version"] * 3
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert DatasetVersion.objects.count() == 1
    assert ModelVersion.objects.count() == 1
    assert sorted(created for _, created in results) == [False, False, False, False, True, True]
