"""GitLab through the real python-gitlab client, against a small GitLab stand-in on 127.0.0.1
that answers the endpoints the portal uses: pipelines, commit statuses, and the deployments that
a protected environment holds for approval (`server.deployments`, by id)."""

import json
from urllib.parse import parse_qs, urlparse

import pytest

from portal.exceptions import Conflict
from registry import gitlab, services, tasks
from registry.builders import commit_id
from tests.registry import helpers
from tests.stubs import JsonHandler, serving

pytestmark = pytest.mark.django_db

PROJECT_ID = 42
GREEN = commit_id("green")
RED = commit_id("red")
NEVER_BUILT = commit_id("never built")


DEPLOYMENTS = f"/api/v4/projects/{PROJECT_ID}/deployments/"


class FakeGitLab(JsonHandler):
    pipelines = {
        GREEN: [{"id": 12, "status": "success"}, {"id": 11, "status": "failed"}],
        RED: [{"id": 21, "status": "failed"}],
    }

    def deployment(self, path: str, suffix: str = "") -> dict | None:
        """The deployment a path under the project's deployments names, if the server has it."""
        number = path.removeprefix(DEPLOYMENTS).removesuffix(suffix)
        return self.server.deployments.get(int(number)) if number.isdigit() else None

    def do_GET(self):
        url = urlparse(self.path)
        self.server.calls.append(("GET", url.path, parse_qs(url.query), None, self.headers))
        if url.path.startswith(DEPLOYMENTS) and self.deployment(url.path):
            return self.answer(200, self.deployment(url.path))
        if url.path == f"/api/v4/projects/{PROJECT_ID}/pipelines":
            query = parse_qs(url.query)
            found = sorted(
                self.pipelines.get(query["sha"][0], []), key=lambda p: p["id"], reverse=True
            )
            return self.answer(200, found[: int(query.get("per_page", ["20"])[0])])
        return self.answer(404, {"message": "404 Not Found"})

    def do_POST(self):
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.calls.append(("POST", url.path, parse_qs(url.query), body, self.headers))
        if url.path.startswith(f"/api/v4/projects/{PROJECT_ID}/statuses/"):
            sha = url.path.rsplit("/", 1)[1]
            return self.answer(201, {"id": 1, "sha": sha, "status": body["state"], **body})
        deployment = self.deployment(url.path, "/approval")
        if url.path.endswith("/approval") and deployment:
            if deployment["status"] != "blocked":
                return self.answer(400, {"message": "Deployment is not blocked"})
            deployment["approvals"].append({"status": body["status"], "comment": body["comment"]})
            return self.answer(201, {"user": {"username": "gatehouse"}, **body})
        return self.answer(404, {"message": "404 Not Found"})


@pytest.fixture
def gitlab_server():
    with serving(FakeGitLab) as server:
        server.deployments = {}
        yield server


@pytest.fixture
def repository(org, gitlab_server, settings):
    settings.GITLAB_TOKEN = "glpat-test-token"
    settings.PORTAL_BASE_URL = "https://gatehouse.bank.example"
    repository, _ = services.repository_register(actor=None, url=helpers.REPOSITORY_URL)
    host, port = gitlab_server.server_address
    return services.repository_configure(
        actor=None,
        repository=repository,
        mirror_path="",
        gitlab_url=f"http://{host}:{port}",
        gitlab_project_id=PROJECT_ID,
    )


@pytest.mark.parametrize(
    ("sha", "status"), [(GREEN, "success"), (RED, "failed"), (NEVER_BUILT, None)]
)
def test_pipeline_status_of_a_commit(repository, gitlab_server, sha, status):
    assert gitlab.pipeline_status(repository, sha) == status
    method, path, query, _, headers = gitlab_server.calls[-1]
    assert (method, path) == ("GET", f"/api/v4/projects/{PROJECT_ID}/pipelines")
    assert query["sha"] == [sha]
    assert headers["PRIVATE-TOKEN"] == "glpat-test-token"


def test_commit_status_is_posted_with_a_link_back(repository, gitlab_server):
    answer = gitlab.post_commit_status(
        repository,
        GREEN,
        state="success",
        target_url=gitlab.portal_url("/releases/change-requests/CR-42/"),
        description="CR-42 approved for prod",
    )
    method, path, _, body, headers = gitlab_server.calls[-1]
    assert (method, path) == ("POST", f"/api/v4/projects/{PROJECT_ID}/statuses/{GREEN}")
    assert body == {
        "state": "success",
        "name": "gatehouse/change-request",
        "target_url": "https://gatehouse.bank.example/releases/change-requests/CR-42/",
        "description": "CR-42 approved for prod",
    }
    assert headers["PRIVATE-TOKEN"] == "glpat-test-token"
    assert answer["sha"] == GREEN


def test_commit_status_task_posts_through_the_same_function(repository, gitlab_server):
    tasks.post_commit_status.apply(
        args=[repository.pk, RED, "pending", "/releases/change-requests/CR-7/", "awaiting"]
    ).get()
    _, path, _, body, _ = gitlab_server.calls[-1]
    assert path.endswith(f"/statuses/{RED}")
    assert (body["state"], body["target_url"]) == (
        "pending",
        "https://gatehouse.bank.example/releases/change-requests/CR-7/",
    )


def test_unknown_state_is_refused_before_calling_gitlab(repository, gitlab_server):
    with pytest.raises(ValueError, match="no commit status state"):
        gitlab.post_commit_status(repository, GREEN, state="approved", target_url="https://x")
    assert gitlab_server.calls == []


def test_repository_without_gitlab_project(org):
    repository, _ = services.repository_register(actor=None, url=helpers.REPOSITORY_URL)
    with pytest.raises(Conflict) as excinfo:
        gitlab.pipeline_status(repository, GREEN)
    assert excinfo.value.code == "no_gitlab"
    tasks.post_commit_status.apply(args=[repository.pk, GREEN, "success", "/"]).get()
