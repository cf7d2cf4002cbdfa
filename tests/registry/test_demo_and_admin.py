import io

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from registry import demo, git, services
from registry.builders import digest
from registry.models import DatasetVersion, ModelVersion, RegisteredModel, Repository
from registry.reproducibility import reproducibility
from tests.registry import helpers

pytestmark = pytest.mark.django_db


def test_demo_grows_a_real_repository_and_is_idempotent(org, settings, tmp_path):
    """Also its model risk: three validations, one retired model."""
    settings.VAR_DIR = tmp_path
    out = io.StringIO()
    demo.seed(out)
    counts = (RegisteredModel.objects.count(), ModelVersion.objects.count())
    events = AuditEvent.objects.count()
    assert counts == (4, 11)  # legacy-scorecard and its last build, retired by a change later
    assert "10 versions" in out.getvalue()
    assert set(RegisteredModel.objects.values_list("owner_team__slug", flat=True)) == {
        "data-science"
    }
    repository = Repository.objects.get(url=demo.REPOSITORY_URL)
    assert (tmp_path / demo.MIRROR / "HEAD").exists()
    for version in ModelVersion.objects.all():
        assert git.commit_exists(repository, version.commit_sha)
    authors = {
        c.author_name
        for c in git.commits_between(repository, None, git.resolve_ref(repository, "main"))
    }
    assert len(authors) == 3
    flags = [reproducibility(v).reproducible for v in ModelVersion.objects.all()]
    assert True in flags and False in flags

    demo.seed(io.StringIO())
    assert (RegisteredModel.objects.count(), ModelVersion.objects.count()) == counts
    assert DatasetVersion.objects.count() == len(demo.DATASETS)
    assert AuditEvent.objects.count() == events


@pytest.fixture
def admin_client(login, administrator):
    return login(administrator)


def test_admin_configures_a_repository_through_the_audited_service(admin_client):
    repository, _ = services.repository_register(actor=None, url=helpers.REPOSITORY_URL)
    url = reverse("admin:registry_repository_change", args=[repository.pk])
    response = admin_client.post(
        url,
        {
            "mirror_path": "mirrors/credit.git",
            "gitlab_url": "https://gitlab.example.com",
            "gitlab_project_id": "17",
        },
    )
    assert response.status_code == 302
    repository.refresh_from_db()
    assert (repository.mirror_path, repository.gitlab_project_id) == ("mirrors/credit.git", 17)
    event = AuditEvent.objects.get(action="repository.configured")
    assert event.actor_name == "admin"
    assert event.data["after"]["gitlab_project_id"] == 17


def test_admin_adds_a_repository_through_the_services(admin_client):
    response = admin_client.post(
        reverse("admin:registry_repository_add"),
        {"url": "git@gitlab.example.com:ml/new.git", "mirror_path": "", "gitlab_url": ""},
    )
    assert response.status_code == 302
    assert Repository.objects.get().url == "git@gitlab.example.com:ml/new"
    assert AuditEvent.objects.filter(action="repository.registered").count() == 1


def test_admin_cannot_change_versions_or_datasets(admin_client, model, dataset):
    version = helpers.register_version()
    assert admin_client.get(reverse("admin:registry_modelversion_add")).status_code == 403
    change = reverse("admin:registry_modelversion_change", args=[version.pk])
    page = admin_client.get(change)
    assert page.status_code == 200
    assert b'name="artifact_sha256"' not in page.content
    admin_client.post(change, {"artifact_sha256": "0" * 64})
    version.refresh_from_db()
    assert version.artifact_sha256 == digest("artifact 1.0.0")
    delete = reverse("admin:registry_modelversion_delete", args=[version.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert (
        admin_client.get(
            reverse("admin:registry_datasetversion_delete", args=[dataset.pk])
        ).status_code
        == 403
    )
    assert ModelVersion.objects.count() == 1


def test_admin_registers_a_model_through_the_service(admin_client, org):
    response = admin_client.post(
        reverse("admin:registry_registeredmodel_add"),
        {
            "name": "aml-screening",
            "owner_team": org["data-science"].pk,
            "description": "",
            "risk_tier": "1",
        },
    )
    assert response.status_code == 302
    assert RegisteredModel.objects.get().name == "aml-screening"
    assert AuditEvent.objects.get(action="model.registered").actor_name == "admin"
