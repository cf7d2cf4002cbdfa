"""Rule 1 (issue 14, hole 2): one artifact digest is one build. The digest registered again with an
invented commit or another CI build, under any model, is a 409 naming the version it belongs to;
the same registration again stays an idempotent 200, and the same build under a second version
name is still that build."""

import hashlib
from functools import partial

import pytest
from django.conf import settings

from registry import services
from registry.models import ModelVersion
from tests.conftest import TRANSACTIONAL_APPS

REPOSITORY = "https://gitlab.example.com/data-science/fraud"
DIGEST = hashlib.sha256(b"fraud-score 2.0 model.pkl").hexdigest()


def payload(**changes) -> dict:
    return {
        "version": "2.0",
        "repository": REPOSITORY,
        "commit_sha": hashlib.sha1(b"the real commit").hexdigest(),  # noqa: S324
        "build_id": "pipeline-901",
        "artifact_uri": "s3://bank-ml-models/fraud-score/2.0/model.pkl",
        "artifact_sha256": DIGEST,
        "datasets": [],
        **changes,
    }


@pytest.fixture
def models(org):
    for name in ("fraud-score", "churn-forecast"):
        services.model_register(actor=None, name=name, owner_team="data-science")


@pytest.mark.django_db
def test_a_known_digest_under_an_invented_commit_is_refused_through_the_api(models, ci):
    client = ci.client()
    url = "/api/v1/models/fraud-score/versions/"
    assert client.post(url, payload(), format="json").status_code == 201
    assert client.post(url, payload(), format="json").status_code == 200

    invented = payload(version="2.0-hotfix", commit_sha="f" * 40)
    refused = client.post(url, invented, format="json")
    assert refused.status_code == 409
    assert refused.json()["code"] == "artifact_already_registered"
    assert "fraud-score 2.0" in refused.json()["detail"]

    other_build = payload(version="2.1", build_id="pipeline-902")
    assert client.post(url, other_build, format="json").json()["code"] == (
        "artifact_already_registered"
    )
    elsewhere = client.post(
        "/api/v1/models/churn-forecast/versions/",
        payload(version="1.0", commit_sha="e" * 40),
        format="json",
    )
    assert elsewhere.status_code == 409
    assert elsewhere.json()["code"] == "artifact_already_registered"
    assert ModelVersion.objects.filter(artifact_sha256=DIGEST).count() == 1


@pytest.mark.django_db
def test_the_same_build_under_a_second_name_is_still_that_build(models):
    first, created = services.model_version_register(actor=None, model="fraud-score", **payload())
    again, created_again = services.model_version_register(
        actor=None, model="fraud-score", **payload(version="2.0-rc")
    )
    assert created and created_again
    assert (again.commit_sha, again.build_id) == (first.commit_sha, first.build_id)


@pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="parallel writers need PostgreSQL",
)
@pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)
def test_two_builds_racing_with_one_digest_end_with_one(models):
    from tests.concurrency.helpers import race

    def register(model: str, commit: str):
        return services.model_version_register(
            actor=None, model=model, **payload(commit_sha=commit * 40)
        )

    results, errors = race(
        [partial(register, "fraud-score", "a"), partial(register, "churn-forecast", "b")] * 2
    )
    assert ModelVersion.objects.filter(artifact_sha256=DIGEST).count() == 1
    assert {error.code for error in errors} == {"artifact_already_registered"}
    assert len(results) == 2
