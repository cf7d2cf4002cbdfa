"""GitLab's pipeline verdict in the gate (`pipeline_not_green`) and the change request's state
posted back on the commit, through the real python-gitlab client against a local stand-in."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from portal.celery import app as celery_app
from registry import services as registry
from registry import tasks
from registry.builders import digest
from registry.models import PipelineStatus
from releases.builders import file_change
from releases.services.gate import gate_evaluate
from tests.registry import helpers
from tests.registry.test_gitlab import GREEN, NEVER_BUILT, RED

pytestmark = pytest.mark.django_db
# The GitLab stand-in and its linked repository come from the registry's GitLab tests.
pytest_plugins = ["tests.registry.test_gitlab"]


@pytest.fixture
def eager():
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = saved


def register(commit_sha: str, version: str):
    registry.model_register(actor=None, name="credit-scoring", owner_team="data-science")
    # One digest is one build: each build here has its own artifact.
    payload = helpers.version_payload(
        version=version,
        commit_sha=commit_sha,
        artifact_sha256=digest(f"credit-scoring {version}"),
        datasets=[],
    )
    return registry.model_version_register(actor=None, model="credit-scoring", **payload)[0]


def gate_codes(envs, version):
    return gate_evaluate(
        environment=envs["dev"], model="credit-scoring", version=version.version
    ).codes()


def test_registration_refreshes_the_pipeline_and_the_gate_reads_it(
    envs,
    repository,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks() as callbacks:
        green = register(GREEN, "1.0.0")
    assert callbacks, "the refresh is enqueued after commit"
    tasks.refresh_pipeline_status(repository.pk, GREEN)
    assert gate_codes(envs, green) == []

    red = register(RED, "1.0.1")
    assert "pipeline_not_green" in gate_codes(envs, red)
    tasks.refresh_pipeline_status(repository.pk, RED)
    answer = gate_evaluate(environment=envs["dev"], model="credit-scoring", version="1.0.1")
    assert [reason.message for reason in answer.reasons if reason.code == "pipeline_not_green"] == [
        f"The GitLab pipeline of commit {RED[:10]} is failed. Make it pass in GitLab; the gate "
        "reads its status again within minutes."
    ]


def test_a_commit_without_pipeline_is_not_green(envs, repository):
    never = register(NEVER_BUILT, "2.0.0")
    assert "pipeline_not_green" in gate_codes(envs, never)
    tasks.refresh_pipeline_status(repository.pk, NEVER_BUILT)
    assert PipelineStatus.objects.get(commit_sha=NEVER_BUILT).status == "none"
    assert "pipeline_not_green" in gate_codes(envs, never)


def test_a_status_change_is_audited_once(envs, repository, gitlab_server):
    register(RED, "3.0.0")
    tasks.refresh_pipeline_status(repository.pk, RED)
    tasks.refresh_pipeline_status(repository.pk, RED)
    changes = AuditEvent.objects.filter(action="registry.pipeline_status_changed")
    assert [(e.data["before"], e.data["after"]) for e in changes] == [(None, "failed")]


def test_the_periodic_refresh_skips_final_statuses(repository, eager):
    register(GREEN, "4.0.0")
    register(NEVER_BUILT, "4.0.1")
    assert tasks.refresh_pipeline_statuses() == 2
    assert tasks.refresh_pipeline_statuses() == 1


def test_change_request_states_are_posted_on_the_commit(
    envs,
    repository,
    gitlab_server,
    eager,
    requester,
    peer,
    django_capture_on_commit_callbacks,
):
    green = register(GREEN, "5.0.0")
    with django_capture_on_commit_callbacks(execute=True):
        change = file_change(
            model_version=green,
            environment=envs["test"],
            requester=requester,
            signers=[peer],
            window_start=timezone.now() + timedelta(hours=1),
        )
    posted = [
        (call[3]["state"], call[3]["name"], call[3]["description"])
        for call in gitlab_server.calls
        if call[0] == "POST" and call[1].endswith(f"/statuses/{GREEN}")
    ]
    assert posted == [
        ("pending", "gatehouse/change-request", f"{change.number} in peer review for test"),
        ("success", "gatehouse/change-request", f"{change.number} approved for test"),
    ]
    target = [c[3]["target_url"] for c in gitlab_server.calls if c[0] == "POST"][-1]
    assert target == f"https://gatehouse.bank.example/releases/change-requests/{change.number}/"
