"""Parallel CI jobs registering different builds without a version: each gets its own number."""

from functools import partial

import pytest
from django.conf import settings

from registry import services
from registry.builders import commit_id, digest
from registry.models import ModelVersion, RegisteredModel
from tests.concurrency.helpers import race
from tests.conftest import TRANSACTIONAL_APPS
from tests.registry import helpers

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
JOBS = 8


@pytest.mark.skipif(not ON_POSTGRES, reason="row locks and parallel writers need PostgreSQL")
@pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)
def test_parallel_builds_without_a_version_get_distinct_consecutive_numbers(org):
    model = helpers.register_model()
    helpers.register_version(version="2", datasets=[])

    def register(job: int):
        version, created = services.model_version_register(
            actor=None,
            model="credit-scoring",
            **helpers.version_payload(
                version="",
                datasets=[],
                commit_sha=commit_id(f"job {job}"),
                build_id=f"job-{job}",
                artifact_sha256=digest(f"job {job}"),
            ),
        )
        return version.version, created

    results, errors = race([partial(register, job) for job in range(JOBS)])
    assert errors == []
    numbers = sorted(int(version) for version, created in results if created)
    assert numbers == list(range(3, 3 + JOBS))
    assert ModelVersion.objects.filter(model=model).count() == JOBS + 1
    assert RegisteredModel.objects.get(pk=model.pk).highest_version_number == 2 + JOBS
