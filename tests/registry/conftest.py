import pytest
from git import Repo

from registry.builders import repository_grow, repository_mirrored, training_commits
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
    repo, shas = repository_grow(tmp_path / "source", training_commits(5))
    repo.shas = shas
    return repo


@pytest.fixture
def mirrored(source_repo, tmp_path, model, dataset):
    """The registry's repository, with a bare mirror of `source_repo`."""
    Repo.clone_from(str(source_repo.working_dir), str(tmp_path / "mirror.git"), mirror=True)
    return repository_mirrored(helpers.REPOSITORY_URL, str(tmp_path / "mirror.git"))
