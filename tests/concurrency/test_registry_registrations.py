"""CI retries and parallel jobs: identical registrations racing each other end with one record."""

from functools import partial

import pytest
from django.conf import settings

from registry import services
from registry.models import DatasetVersion, ModelVersion, RegisteredModel, Repository
from tests.concurrency.helpers import race
from tests.conftest import TRANSACTIONAL_APPS
from tests.registry import helpers

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


@pytest.mark.skipif(not ON_POSTGRES, reason="row locks and parallel writers need PostgreSQL")
@pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)
def test_concurrent_identical_registrations_end_with_one_record(org):
    helpers.register_model()
    calls = {
        "dataset": lambda: services.dataset_version_register(
            actor=None, **helpers.dataset_payload()
        ),
        "model": lambda: services.model_register(
            actor=None, **helpers.model_payload(name="fraud-detection")
        ),
        "repository": lambda: services.repository_register(
            actor=None, url="https://gitlab.example.com/ml/other"
        ),
        "version": lambda: services.model_version_register(
            actor=None, model="credit-scoring", **helpers.version_payload(datasets=[], version="")
        ),
    }
    kinds = [kind for kind in calls for _ in range(3)]

    def register(kind):
        record, created = calls[kind]()
        return kind, record.pk, created

    results, errors = race([partial(register, kind) for kind in kinds])
    assert errors == []
    for kind in calls:
        outcomes = [(pk, created) for k, pk, created in results if k == kind]
        assert len({pk for pk, _ in outcomes}) == 1, kind
        assert sorted(created for _, created in outcomes) == [False, False, True], kind
    assert DatasetVersion.objects.count() == 1
    assert ModelVersion.objects.count() == 1
    assert RegisteredModel.objects.filter(name="fraud-detection").count() == 1
    assert Repository.objects.count() == 2
