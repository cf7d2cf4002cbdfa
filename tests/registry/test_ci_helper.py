"""The CI helper end to end: downloaded from the portal, run as a subprocess with GitLab CI's
variables, against a running test server."""

import hashlib
import json
import os
import subprocess
import sys

import pytest
from django.test import Client
from django.urls import reverse

from registry.builders import commit_id
from registry.models import DatasetVersion, ModelVersion, Repository
from releases.models import BatchRun, Deployment
from tests.conftest import TRANSACTIONAL_APPS
from tests.registry import helpers
from tests.stubs import JsonHandler, serving

PIPELINE = "https://gitlab.example.com/data-science/credit-models/-/pipelines/9001"
GITLAB_CI = {
    "GITLAB_CI": "true",
    "CI_COMMIT_SHA": commit_id("gitlab commit"),
    "CI_COMMIT_REF_NAME": "main",
    "CI_PIPELINE_ID": "9001",
    "CI_PIPELINE_URL": PIPELINE,
    "CI_PROJECT_URL": helpers.REPOSITORY_URL,
}
FOREIGN_CI = ("CI_", "GITHUB_", "GIT_", "BUILD_", "JENKINS", "GATEHOUSE_")


@pytest.fixture
def script(tmp_path, requester, password):
    """The helper as a user downloads it from the portal."""
    client = Client()
    assert client.login(username=requester.username, password=password)
    response = client.get(reverse("registry:ci-helper"))
    path = tmp_path / "gatehouse_ci.py"
    path.write_bytes(b"".join(response.streaming_content))
    return path


@pytest.fixture
def run(script):
    def run_helper(*args, url="", token="", ci=GITLAB_CI, insecure=True):
        """The test portals speak plain http on loopback, hence `--insecure` unless a test
        checks that http is refused."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_CI)}
        env.update(ci)
        if url:
            env["GATEHOUSE_URL"] = url
        if token:
            env["GATEHOUSE_TOKEN"] = token
        options = ["--insecure"] if insecure else []
        return subprocess.run(
            [sys.executable, str(script), *options, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run_helper


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, content in {
        "loans.parquet": b"loan rows",
        "model.pkl": b"trained weights",
        "uv.lock": b"pinned environment",
    }.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(content)
    return paths


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)
def test_registers_dataset_and_build_from_gitlab_ci(live_server, ci, run, files):
    portal = {"url": live_server.url, "token": ci.secret}
    model = run(
        "model",
        "--name",
        "credit-scoring",
        "--owner-team",
        "data-science",
        "--risk-tier",
        "1",
        **portal,
    )
    assert model.returncode == 0, model.stderr

    dataset_args = [
        "dataset",
        "--name",
        "loans",
        "--version",
        "2026-11",
        "--uri",
        "s3://data/loans.parquet",
        "--file",
        str(files["loans.parquet"]),
        "--rows",
        "42",
    ]
    first = run(*dataset_args, **portal)
    assert first.returncode == 0, first.stderr
    dataset = DatasetVersion.objects.get()
    assert json.loads(first.stdout)["id"] == dataset.pk
    assert dataset.sha256 == sha(files["loans.parquet"])
    assert dataset.rows == 42
    assert run(*dataset_args, **portal).returncode == 0
    assert DatasetVersion.objects.count() == 1

    build_args = [
        "--field",
        "id",
        "build",
        "--model",
        "credit-scoring",
        "--version",
        "2.0.0",
        "--artifact",
        str(files["model.pkl"]),
        "--artifact-uri",
        "s3://models/cs/2.0.0.pkl",
        "--dataset",
        "loans@2026-11",
        "--env-lock",
        str(files["uv.lock"]),
        "--metrics",
        '{"auc": 0.83}',
        "--framework",
        "xgboost 3",
    ]
    built = run(*build_args, **portal)
    assert built.returncode == 0, built.stderr
    version = ModelVersion.objects.get()
    assert built.stdout.strip() == str(version.pk)
    assert version.commit_sha == GITLAB_CI["CI_COMMIT_SHA"]
    assert (version.ref, version.build_id, version.build_url) == ("main", "9001", PIPELINE)
    assert version.repository.url == helpers.REPOSITORY_URL
    assert version.artifact_sha256 == sha(files["model.pkl"])
    assert version.env_lock_sha256 == sha(files["uv.lock"])
    assert version.metrics == {"auc": 0.83}
    assert version.created_by_name == "ci-pipeline"
    assert [d.pk for d in version.datasets.all()] == [dataset.pk]

    retry = run(*build_args, **portal)
    assert retry.returncode == 0, retry.stderr
    assert retry.stdout.strip() == str(version.pk)
    assert ModelVersion.objects.count() == 1
    assert Repository.objects.count() == 1

    files["model.pkl"].write_bytes(b"different weights")
    conflict = run(*build_args, **portal)
    assert conflict.returncode == 1
    assert "model_version_conflict" in conflict.stderr

    unknown_data = run(*build_args[:-6], "--dataset", "loans@1999", "--version", "3", **portal)
    assert unknown_data.returncode == 1
    assert "unknown_dataset: Unknown dataset version(s): loans@1999" in unknown_data.stderr


@pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)
def test_refusals_and_configuration_errors(live_server, service_caller, run, files):
    reader = service_caller("gate:read")
    denied = run(
        "dataset",
        "--name",
        "loans",
        "--version",
        "1",
        "--uri",
        "s3://x",
        "--sha256",
        "0" * 64,
        url=live_server.url,
        token=reader.secret,
    )
    assert denied.returncode == 1
    assert "registry:write" in denied.stderr
    assert DatasetVersion.objects.count() == 0

    unconfigured = run("dataset", "--name", "l", "--version", "1", "--uri", "u", "--sha256", "0")
    assert unconfigured.returncode == 2
    assert "GATEHOUSE_URL" in unconfigured.stderr


def test_reads_github_actions_and_jenkins_variables(run):
    github = run(
        "context",
        ci={
            "GITHUB_SHA": "a" * 40,
            "GITHUB_REF_NAME": "release/1",
            "GITHUB_RUN_ID": "77",
            "GITHUB_SERVER_URL": "https://github.example.com",
            "GITHUB_REPOSITORY": "bank/credit-models",
        },
    )
    assert json.loads(github.stdout) == {
        "system": "github",
        "commit_sha": "a" * 40,
        "ref": "release/1",
        "build_id": "77",
        "build_url": "https://github.example.com/bank/credit-models/actions/runs/77",
        "repository": "https://github.example.com/bank/credit-models",
    }
    jenkins = run(
        "context",
        ci={
            "GIT_COMMIT": "b" * 40,
            "GIT_BRANCH": "origin/main",
            "BUILD_NUMBER": "12",
            "BUILD_URL": "https://jenkins.example.com/job/models/12/",
            "GIT_URL": "git@git.example.com:bank/credit-models.git",
        },
    )
    assert json.loads(jenkins.stdout) == {
        "system": "jenkins",
        "commit_sha": "b" * 40,
        "ref": "main",
        "build_id": "12",
        "build_url": "https://jenkins.example.com/job/models/12/",
        "repository": "git@git.example.com:bank/credit-models.git",
    }


class FakeReleases(JsonHandler):
    """Stands in for the gate and deployment endpoints to check what the helper sends."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.calls.append((self.path, body, self.headers["Authorization"]))
        if self.path == "/api/v1/gate/":
            allowed = body.get("model") == "credit-scoring"
            answer = {
                "allowed": allowed,
                "change_request": "CR-7" if allowed else None,
                "reasons": []
                if allowed
                else [
                    {"code": "no_approved_change", "message": "No approved change request."},
                    {"code": "soak_not_met", "message": "Not soaked in test for 7 days."},
                ],
            }
            status = 200
        elif self.path == "/api/v1/deployments/":
            answer, status = {"id": 31, "status": "started"}, 201
        else:
            answer, status = {"id": 31, "status": body["status"]}, 200
        self.answer(status, answer)


@pytest.fixture
def releases_stub():
    with serving(FakeReleases) as server:
        yield server


def test_gate_and_deployment_requests(run, files, releases_stub):
    portal = {"url": "http://{}:{}".format(*releases_stub.server_address), "token": "gh_a_b"}
    allowed = run(
        "gate",
        "--environment",
        "prod",
        "--model",
        "credit-scoring",
        "--artifact",
        str(files["model.pkl"]),
        "--change-request",
        "CR-7",
        **portal,
    )
    assert allowed.returncode == 0, allowed.stderr
    assert releases_stub.calls[-1] == (
        "/api/v1/gate/",
        {
            "environment": "prod",
            "model": "credit-scoring",
            "artifact_sha256": sha(files["model.pkl"]),
            "change_request": "CR-7",
        },
        "Bearer gh_a_b",
    )
    denied = run("gate", "--environment", "prod", "--model", "other", "--version", "3", **portal)
    assert denied.returncode == 1
    assert "no_approved_change: No approved change request." in denied.stderr
    assert "soak_not_met" in denied.stderr

    started = run(
        "--field",
        "id",
        "deploy-start",
        "--environment",
        "prod",
        "--model",
        "credit-scoring",
        "--version",
        "2.0.0",
        "--change-request",
        "CR-7",
        **portal,
    )
    assert started.stdout.strip() == "31"
    assert releases_stub.calls[-1][1] == {
        "environment": "prod",
        "model": "credit-scoring",
        "version": "2.0.0",
        "change_request": "CR-7",
        "pipeline_url": PIPELINE,
    }
    finished = run(
        "deploy-result", "--deployment", "31", "--status", "failed", "--detail", "OOM", **portal
    )
    assert finished.returncode == 0
    assert releases_stub.calls[-1][:2] == (
        "/api/v1/deployments/31/result/",
        {"status": "failed", "detail": "OOM"},
    )


@pytest.mark.django_db(transaction=True, available_apps=TRANSACTIONAL_APPS)
def test_gate_and_deployment_against_the_portal(live_server, envs, ci, run, files):
    portal = {"url": live_server.url, "token": ci.secret}
    model = run("model", "--name", "credit-scoring", "--owner-team", "data-science", **portal)
    assert model.returncode == 0, model.stderr
    built = run(
        "build",
        "--model",
        "credit-scoring",
        "--version",
        "2.0.0",
        "--artifact",
        str(files["model.pkl"]),
        "--artifact-uri",
        "s3://models/cs/2.0.0.pkl",
        **portal,
    )
    assert built.returncode == 0, built.stderr

    allowed = run(
        "gate",
        "--environment",
        "dev",
        "--model",
        "credit-scoring",
        "--artifact",
        str(files["model.pkl"]),
        **portal,
    )
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["allowed"] is True

    started = run(
        "--field",
        "id",
        "deploy-start",
        "--environment",
        "dev",
        "--model",
        "credit-scoring",
        "--version",
        "2.0.0",
        **portal,
    )
    assert started.returncode == 0, started.stderr
    deployment = Deployment.objects.get(pk=int(started.stdout))
    assert deployment.pipeline_url == PIPELINE
    finished = run(
        "deploy-result", "--deployment", started.stdout.strip(), "--status", "succeeded", **portal
    )
    assert finished.returncode == 0, finished.stderr
    deployment.refresh_from_db()
    assert deployment.status == "succeeded"

    denied = run(
        "gate",
        "--environment",
        "prod",
        "--model",
        "credit-scoring",
        "--version",
        "2.0.0",
        **portal,
    )
    assert denied.returncode == 1
    assert "gate: denied" in denied.stderr
    assert "no_approved_change" in denied.stderr
    refused = run(
        "deploy-start",
        "--environment",
        "prod",
        "--model",
        "credit-scoring",
        "--version",
        "2.0.0",
        **portal,
    )
    assert refused.returncode == 1
    assert "no_approved_change" in refused.stderr
    assert Deployment.objects.count() == 1

    # A batch job in dev checks the artifact it loaded before scoring (issue 20).
    scoring = ("run-start", "--environment", "dev", "--model", "credit-scoring")
    job = {**portal, "ci": {"GATEHOUSE_JOB_ID": "application_1733_0001"}}
    live = run(*scoring, "--artifact", str(files["model.pkl"]), **job)
    assert live.returncode == 0, live.stderr
    assert json.loads(live.stdout)["allowed"] is True
    assert json.loads(live.stdout)["job_id"] == "application_1733_0001"
    stale = run(*scoring, "--artifact", str(files["uv.lock"]), "--job-id", "app_2", **portal)
    assert stale.returncode == 1
    assert "run refused" in stale.stderr and "digest_not_live" in stale.stderr
    assert BatchRun.objects.filter(allowed=False, job_id="app_2").exists()


GATE_ARGS = ("gate", "--environment", "prod", "--model", "credit-scoring", "--version", "3")


class RecordsTokens(JsonHandler):
    """Where a redirect points: records any Authorization it receives, and would allow."""

    def do_GET(self):
        self.server.calls.append((self.command, self.path, self.headers["Authorization"]))
        self.answer(200, {"allowed": True, "reasons": []})

    do_POST = do_GET


def redirecting_to(location: str, status: int) -> type[JsonHandler]:
    class Redirects(JsonHandler):
        def do_POST(self):
            self.server.calls.append(self.path)
            self.send_response(status)
            self.send_header("Location", f"{location}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Redirects


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_refused_and_the_token_never_follows(run, status):
    with serving(RecordsTokens) as elsewhere:
        target = "http://{}:{}".format(*elsewhere.server_address)
        with serving(redirecting_to(target, status)) as portal:
            url = "http://{}:{}".format(*portal.server_address)
            result = run(*GATE_ARGS, url=url, token="gh_secret_token")
        assert portal.calls == ["/api/v1/gate/"]
        assert elsewhere.calls == []
    assert result.returncode == 2, result.stdout
    assert f"redirect (HTTP {status}) to {target}/api/v1/gate/" in result.stderr
    assert "not followed" in result.stderr
    assert "gh_secret_token" not in result.stderr + result.stdout


def test_plain_http_is_refused_without_insecure(run, releases_stub):
    url = "http://{}:{}".format(*releases_stub.server_address)
    result = run(*GATE_ARGS, url=url, token="gh_a_b", insecure=False)
    assert result.returncode == 2
    assert "http://" in result.stderr
    assert "--insecure" in result.stderr
    assert releases_stub.calls == []


class AnswersLikeAProxy(JsonHandler):
    """A proxy or single sign-on page in front of the portal: not the portal's JSON."""

    def do_POST(self):
        status, body, content_type = {
            "/html/api/v1/gate/": (200, b"<html><body>Sign in</body></html>", "text/html"),
            "/text/api/v1/gate/": (200, b'{"allowed": true}', "text/plain"),
            "/list/api/v1/gate/": (200, b"[true]", "application/json"),
            "/sso/api/v1/gate/": (401, b"<html><body>Sign in</body></html>", "text/html"),
        }[self.path]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.parametrize("kind", ["html", "text", "list", "sso"])
def test_an_answer_that_is_not_the_portals_json_is_refused(run, kind):
    with serving(AnswersLikeAProxy) as proxy:
        url = "http://{}:{}/{}".format(*proxy.server_address, kind)
        result = run(*GATE_ARGS, url=url, token="gh_a_b")
    assert result.returncode == 2, result.stdout
    assert "not a Gatehouse answer" in result.stderr
    assert "Traceback" not in result.stderr
