"""Git on real repositories made in the test: a working repository and its bare mirror."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from git import Repo

from portal.exceptions import NotFound
from registry import git, selectors, services, tasks
from registry.builders import AUTHORS, commit_id, digest, repository_grow, training_commits
from registry.models import Repository
from tests.registry import helpers

pytestmark = pytest.mark.django_db


def test_known_and_unknown_commits(mirrored, source_repo):
    assert all(git.commit_exists(mirrored, sha) for sha in source_repo.shas)
    assert not git.commit_exists(mirrored, commit_id("never made"))
    assert not git.commit_exists(mirrored, "not-a-sha")


def test_no_mirror_means_nothing_is_known(org):
    repository, _ = services.repository_register(actor=None, url=helpers.REPOSITORY_URL)
    assert git.open_mirror(repository) is None
    assert not git.commit_exists(repository, commit_id("x"))
    assert git.commits_between(repository, None, commit_id("x")) == []
    with pytest.raises(NotFound) as excinfo:
        git.resolve_ref(repository, "main")
    assert excinfo.value.code == "no_mirror"


def test_ref_resolution(mirrored, source_repo):
    source_repo.create_tag("v1.0", ref=source_repo.shas[1])
    source_repo.create_head("release", commit=source_repo.shas[2])
    Repo.clone_from(
        str(source_repo.working_dir),
        str(git.mirror_path(mirrored).with_name("m2.git")),
        mirror=True,
    )
    services.repository_configure(
        actor=None,
        repository=mirrored,
        mirror_path=str(git.mirror_path(mirrored).with_name("m2.git")),
        gitlab_url="",
        gitlab_project_id=None,
    )
    mirrored.refresh_from_db()
    assert git.resolve_ref(mirrored, "main") == source_repo.shas[-1]
    assert git.resolve_ref(mirrored, "v1.0") == source_repo.shas[1]
    assert git.resolve_ref(mirrored, "release") == source_repo.shas[2]
    assert git.resolve_ref(mirrored, source_repo.shas[3][:8]) == source_repo.shas[3]
    for unknown in ["no-such-branch", "--all", commit_id("nothing")]:
        with pytest.raises(NotFound) as excinfo:
            git.resolve_ref(mirrored, unknown)
        assert excinfo.value.code == "unknown_ref"


def test_commits_between_two_shas(mirrored, source_repo):
    shas = source_repo.shas
    between = git.commits_between(mirrored, shas[1], shas[4])
    assert [c.sha for c in between] == [shas[4], shas[3], shas[2]]
    newest = between[0]
    assert newest.subject == "Train step 4"
    assert "Longer explanation of step 4." in newest.message
    assert newest.author_name == AUTHORS[4 % 3].name
    assert newest.author_email == AUTHORS[4 % 3].email
    assert newest.authored_at.isoformat().startswith("2026-11-01T13:00")
    assert {c.author_name for c in between} == {author.name for author in AUTHORS}
    assert git.commits_between(mirrored, shas[4], shas[4]) == []
    assert [c.sha for c in git.commits_between(mirrored, None, shas[1])] == [shas[1], shas[0]]
    assert git.commits_between(mirrored, commit_id("unknown"), shas[4]) == []


def test_commits_in_release_selector(mirrored, source_repo):
    shas = source_repo.shas
    live = helpers.register_version(commit_sha=shas[1])
    candidate = helpers.register_version(
        version="1.1.0", commit_sha=shas[3], artifact_sha256=digest("1.1.0")
    )
    commits = selectors.commits_in_release(live=live, candidate=candidate)
    assert [c.sha for c in commits] == [shas[3], shas[2]]
    first_release = selectors.commits_in_release(live=None, candidate=live)
    assert [c.sha for c in first_release] == [shas[1], shas[0]]


def test_fetch_brings_new_commits_into_the_mirror(mirrored, source_repo, tmp_path):
    _, new = repository_grow(tmp_path / "source", training_commits(2, start=5))
    assert not git.commit_exists(mirrored, new[-1])
    results = git.fetch_mirrors()
    assert [(r.repository, r.ok, r.detail) for r in results] == [(mirrored, True, "fetched")]
    assert git.commit_exists(mirrored, new[-1])


def test_fetch_clones_a_missing_mirror(org, source_repo, tmp_path):
    repository = Repository.objects.create(
        url=source_repo.working_dir, mirror_path=str(tmp_path / "fresh.git")
    )
    result = git.fetch_mirror(repository)
    assert (result.ok, result.detail) == (True, "cloned")
    assert git.commit_exists(repository, source_repo.shas[0])


def test_fetch_mirrors_command_and_task(mirrored, source_repo, tmp_path, capsys):
    _, new = repository_grow(tmp_path / "source", training_commits(1, start=5))
    call_command("fetch_mirrors")
    assert "ok" in capsys.readouterr().out
    assert git.commit_exists(mirrored, new[0])
    _, newer = repository_grow(tmp_path / "source", training_commits(1, start=6))
    assert tasks.fetch_mirrors.apply().get() == [
        {"repository": mirrored.url, "ok": True, "detail": "fetched"}
    ]
    assert git.commit_exists(mirrored, newer[0])


def test_fetch_failure_is_reported_not_raised(org, tmp_path):
    repository = Repository.objects.create(
        url=str(tmp_path / "does-not-exist"), mirror_path=str(tmp_path / "broken.git")
    )
    result = git.fetch_mirror(repository)
    assert not result.ok
    assert result.detail
    with pytest.raises(CommandError):
        call_command("fetch_mirrors")
