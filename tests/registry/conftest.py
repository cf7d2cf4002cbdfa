import pytest

from tests.registry import helpers


@pytest.fixture
def dataset(org):
    return helpers.register_dataset()


@pytest.fixture
def model(org):
    return helpers.register_model()


@pytest.fixture
def source_repo(tmp_path):
    """A working repository with five commits; `.shas` oldest first."""
    repo, shas = helpers.grow_repository(tmp_path / "source", 5)
    repo.shas = shas
    return repo


@pytest.fixture
def mirrored(source_repo, tmp_path, model, dataset):
    """The registry's repository, with a bare mirror of `source_repo`."""
    from registry import services

    helpers.mirror_of(source_repo.working_dir, tmp_path / "mirror.git")
    repository, _ = services.repository_register(actor=None, url=helpers.REPOSITORY_URL)
    return services.repository_configure(
        actor=None,
        repository=repository,
        mirror_path=str(tmp_path / "mirror.git"),
        gitlab_url="",
        gitlab_project_id=None,
    )
