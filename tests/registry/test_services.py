import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from portal.exceptions import Conflict, NotFound
from registry import services
from registry.builders import commit_id, digest
from registry.models import DatasetVersion, ModelVersion, RegisteredModel, Repository
from tests.registry import helpers

pytestmark = pytest.mark.django_db


def field_errors(excinfo) -> dict:
    return excinfo.value.message_dict


def events(action: str):
    return AuditEvent.objects.filter(action=action)


# Datasets


def test_dataset_registration_records_and_audits(org, ci):
    dataset, created = services.dataset_version_register(
        actor=ci.account, **helpers.dataset_payload()
    )
    assert created
    assert dataset.sha256 == digest("loans 2026-11-01")
    event = events("dataset_version.registered").get()
    assert event.actor_name == "ci-pipeline"
    assert event.data["sha256"] == dataset.sha256
    assert event.object_id == str(dataset.pk)


def test_dataset_same_payload_again_returns_the_record(org):
    first, _ = services.dataset_version_register(actor=None, **helpers.dataset_payload())
    again, created = services.dataset_version_register(actor=None, **helpers.dataset_payload())
    assert not created
    assert again.pk == first.pk
    assert DatasetVersion.objects.count() == 1
    assert events("dataset_version.registered").count() == 1


def test_dataset_different_payload_under_same_key_conflicts(org):
    services.dataset_version_register(actor=None, **helpers.dataset_payload())
    with pytest.raises(Conflict) as excinfo:
        services.dataset_version_register(
            actor=None, **helpers.dataset_payload(sha256=digest("other"))
        )
    assert excinfo.value.code == "dataset_version_conflict"
    assert "sha256" in excinfo.value.detail


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sha256", "abc"),
        ("sha256", "A" * 64),
        ("schema_sha256", "g" * 64),
        ("name", "has space"),
        ("name", ""),
        ("version", ""),
        ("version", "-leading-dash"),
        ("uri", ""),
        ("rows", -1),
    ],
)
def test_dataset_validation_names_the_field(org, field, value):
    with pytest.raises(ValidationError) as excinfo:
        services.dataset_version_register(actor=None, **helpers.dataset_payload(**{field: value}))
    assert list(field_errors(excinfo)) == [field]
    assert DatasetVersion.objects.count() == 0


# Models


def test_model_registration_and_retry(org, ci):
    model, created = services.model_register(actor=ci.account, **helpers.model_payload())
    assert created
    assert model.owner_team == org["data-science"]
    again, created = services.model_register(actor=ci.account, **helpers.model_payload())
    assert (again.pk, created) == (model.pk, False)
    assert events("model.registered").count() == 1
    assert events("model.registered").get().data["owner_team"] == "data-science"


def test_model_conflict_names_what_differs(org):
    services.model_register(actor=None, **helpers.model_payload())
    with pytest.raises(Conflict) as excinfo:
        services.model_register(actor=None, **helpers.model_payload(owner_team="model-risk"))
    assert excinfo.value.code == "model_conflict"
    assert "owner_team" in excinfo.value.detail


@pytest.mark.parametrize(
    ("field", "value"),
    [("risk_tier", 4), ("risk_tier", 0), ("name", "Not a slug")],
)
def test_model_validation_names_the_field(org, field, value):
    with pytest.raises(ValidationError) as excinfo:
        services.model_register(actor=None, **helpers.model_payload(**{field: value}))
    assert field in field_errors(excinfo)
    assert RegisteredModel.objects.count() == 0


def test_a_model_for_an_unknown_team_is_not_found(org):
    with pytest.raises(NotFound) as excinfo:
        services.model_register(actor=None, **helpers.model_payload(owner_team="no-such-team"))
    assert excinfo.value.code == "unknown_team"
    assert RegisteredModel.objects.count() == 0


# Repositories


def test_unknown_repository_is_registered_on_first_use_and_audited(org):
    repository, created = services.repository_register(
        actor=None, url="https://gitlab.example.com/ds/credit-models.git/"
    )
    assert created
    assert repository.url == "https://gitlab.example.com/ds/credit-models"
    assert (repository.mirror_path, repository.gitlab_url) == ("", "")
    same, created = services.repository_register(
        actor=None, url="https://gitlab.example.com/ds/credit-models"
    )
    assert (same.pk, created) == (repository.pk, False)
    assert events("repository.registered").count() == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/bank/models",
        "http://git.internal:8080/ml/models.git",
        "ssh://git@gitlab.example.com:2222/ml/models.git",
        "git@gitlab.example.com:ml/models.git",
    ],
)
def test_repository_url_forms_accepted(org, url):
    repository, created = services.repository_register(actor=None, url=url)
    assert created
    assert repository.url == services.normalise_repository_url(url)


@pytest.mark.parametrize(
    "url", ["", "gitlab.example.com/ml/models", "ftp://host/repo", "https://", "file:///tmp/x"]
)
def test_malformed_repository_url_is_refused(org, url):
    with pytest.raises(ValidationError) as excinfo:
        services.repository_register(actor=None, url=url)
    assert list(field_errors(excinfo)) == ["repository"]


def test_repository_configuration_is_audited_with_before_and_after(org, administrator):
    repository, _ = services.repository_register(actor=None, url=helpers.REPOSITORY_URL)
    services.repository_configure(
        actor=administrator,
        repository=repository,
        mirror_path="mirrors/credit-models.git",
        gitlab_url="https://gitlab.example.com",
        gitlab_project_id=42,
    )
    repository.refresh_from_db()
    assert repository.gitlab_project_id == 42
    event = events("repository.configured").get()
    assert event.actor_name == "admin"
    assert event.data["before"]["gitlab_project_id"] is None
    assert event.data["after"]["mirror_path"] == "mirrors/credit-models.git"


def test_repository_gitlab_needs_url_and_project(org):
    repository, _ = services.repository_register(actor=None, url=helpers.REPOSITORY_URL)
    with pytest.raises(ValidationError) as excinfo:
        services.repository_configure(
            actor=None, repository=repository, mirror_path="", gitlab_url="", gitlab_project_id=7
        )
    assert "gitlab_project_id" in field_errors(excinfo)
    with pytest.raises(ValidationError) as excinfo:
        services.repository_configure(
            actor=None,
            repository=repository,
            mirror_path="",
            gitlab_url="gitlab.example.com",
            gitlab_project_id=7,
        )
    assert "gitlab_url" in field_errors(excinfo)


# Model versions


def test_version_registration_ties_build_data_and_repository(model, dataset, ci):
    version, created = services.model_version_register(
        actor=ci.account, model="credit-scoring", **helpers.version_payload()
    )
    assert created
    assert list(version.datasets.all()) == [dataset]
    assert version.repository.url == helpers.REPOSITORY_URL
    assert version.created_by_service == ci.account
    assert version.created_by_name == "ci-pipeline"
    assert events("repository.registered").count() == 1
    event = events("model_version.registered").get()
    assert event.data["datasets"] == ["loans@2026-11-01"]
    assert event.data["artifact_sha256"] == version.artifact_sha256
    # The audit event is the last write of the transaction.
    assert event.seq == AuditEvent.objects.order_by("-seq").first().seq


def test_version_same_payload_again_returns_the_record(model, dataset):
    first, _ = services.model_version_register(
        actor=None, model="credit-scoring", **helpers.version_payload()
    )
    again, created = services.model_version_register(
        actor=None, model="credit-scoring", **helpers.version_payload()
    )
    assert (again.pk, created) == (first.pk, False)
    assert ModelVersion.objects.count() == 1
    assert Repository.objects.count() == 1
    assert events("model_version.registered").count() == 1


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"artifact_sha256": digest("rebuilt")}, "artifact_sha256"),
        ({"commit_sha": commit_id("another commit")}, "commit_sha"),
        ({"datasets": []}, "datasets"),
        ({"metrics": {"auc": 0.9}}, "metrics"),
        ({"repository": "https://gitlab.example.com/other/repo"}, "repository"),
    ],
)
def test_version_different_payload_conflicts(model, dataset, change, named):
    services.model_version_register(actor=None, model="credit-scoring", **helpers.version_payload())
    with pytest.raises(Conflict) as excinfo:
        services.model_version_register(
            actor=None, model="credit-scoring", **helpers.version_payload(**change)
        )
    assert excinfo.value.code == "model_version_conflict"
    assert named in excinfo.value.detail
    assert ModelVersion.objects.count() == 1


def test_version_without_number_is_named_by_its_build(model, dataset):
    first, _ = services.model_version_register(
        actor=None, model="credit-scoring", **helpers.version_payload(version="")
    )
    retry, created = services.model_version_register(
        actor=None, model="credit-scoring", **helpers.version_payload(version="")
    )
    assert (retry.pk, created) == (first.pk, False)
    second, created = services.model_version_register(
        actor=None,
        model="credit-scoring",
        **helpers.version_payload(
            version="", build_id="4712", artifact_sha256=digest("artifact of build 4712")
        ),
    )
    assert created
    assert (first.version, second.version) == ("1", "2")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("commit_sha", "abc123"),
        ("commit_sha", "G" * 40),
        ("artifact_sha256", "0" * 63),
        ("env_lock_sha256", "xyz"),
        ("build_url", "not a url"),
        ("build_id", ""),
        ("artifact_uri", ""),
        ("repository", "not-a-repository"),
        ("version", "has space"),
        ("params", ["not", "an", "object"]),
        ("datasets", [{"name": "loans"}]),
    ],
)
def test_version_validation_names_the_field(model, dataset, field, value):
    with pytest.raises(ValidationError) as excinfo:
        services.model_version_register(
            actor=None, model="credit-scoring", **helpers.version_payload(**{field: value})
        )
    assert list(field_errors(excinfo)) == [field]
    assert ModelVersion.objects.count() == 0
    assert Repository.objects.count() == 0


def test_version_of_unknown_model_is_refused(org, dataset):
    with pytest.raises(ValidationError) as excinfo:
        services.model_version_register(actor=None, model="nope", **helpers.version_payload())
    assert "model" in field_errors(excinfo)


def test_unknown_dataset_error_names_it(model, dataset):
    with pytest.raises(NotFound) as excinfo:
        services.model_version_register(
            actor=None,
            model="credit-scoring",
            **helpers.version_payload(datasets=[{"name": "ghost", "version": "1"}]),
        )
    assert excinfo.value.code == "unknown_dataset"
    assert "ghost@1" in excinfo.value.detail


def test_commit_must_be_in_the_mirror_when_there_is_one(mirrored, source_repo):
    with pytest.raises(Conflict) as excinfo:
        services.model_version_register(
            actor=None,
            model="credit-scoring",
            **helpers.version_payload(commit_sha=commit_id("never pushed")),
        )
    assert excinfo.value.code == "unknown_commit"
    version, created = services.model_version_register(
        actor=None,
        model="credit-scoring",
        **helpers.version_payload(commit_sha=source_repo.shas[-1]),
    )
    assert created
    assert version.repository == mirrored
