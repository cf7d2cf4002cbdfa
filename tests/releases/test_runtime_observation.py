"""Issue 20, rule 14: what a cluster namespace really serves, read through the real `kubernetes`
client from a stand-in API server, compared with what the ledger says is live. A foreign digest
is flagged once per observation, the live digest is not; a live deployment with no workload is
not running, and its owners and approvers are told once per outage; an unreachable cluster is
reported, Platform Operations are told once per outage, and the last observations stand."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import to_json_value
from portal.models import Notification, Team
from registry.builders import build_register
from registry.models import ModelVersion
from releases.models import (
    ClusterReading,
    DigestSource,
    ModelNotRunning,
    UnauthorisedChange,
    WorkloadKind,
    WorkloadObservation,
)
from releases.services.deployments import (
    deployment_record_result,
    deployment_start,
    health_check_record,
    unauthorised_change_review,
)
from releases.services.policy import (
    cluster_settings_of,
    environment_policy_change,
    environment_update,
)
from releases.services.runs import batch_run_attest
from releases.tasks import observe_runtime, observe_runtimes
from tests.kubernetes_standin import NAMESPACE, TOKEN, TOKEN_VARIABLE

pytestmark = pytest.mark.django_db
SIDECAR = "5" * 64


@pytest.fixture
def dev(envs, kubernetes_api):
    """dev observed in the stand-in's namespace, its token named by variable."""
    return environment_update(
        actor=None,
        environment=envs["dev"],
        rank=envs["dev"].rank,
        description="",
        cluster={
            "cluster_api_server": kubernetes_api.url,
            "cluster_namespace": NAMESPACE,
            "cluster_token_variable": TOKEN_VARIABLE,
        },
    )


@pytest.fixture
def live(dev, ci):
    """fraud-score 1.0 live in dev; 1.1 and 1.2 registered, never deployed."""
    first = build_register("fraud-score", "1.0")
    build_register("fraud-score", "1.1")
    build_register("fraud-score", "1.2")
    deployment, _ = deployment_start(actor=ci.account, environment=dev, model_version=first)
    return deployment_record_result(actor=ci.account, deployment=deployment, status="succeeded")


def digest(version: str) -> str:
    return ModelVersion.objects.get(model__name="fraud-score", version=version).artifact_sha256


def events(action: AuditAction) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def observed(key: str, *fields: str) -> dict:
    """The observations by `key`, each as the tuple of its `fields`."""
    return {row[0]: row[1:] for row in WorkloadObservation.objects.values_list(key, *fields)}


def told(about: str) -> set[str]:
    """The usernames told something whose key contains `about`."""
    return set(
        Notification.objects.filter(key__contains=about).values_list(
            "recipient__username", flat=True
        )
    )


@pytest.mark.parametrize("kind", WorkloadKind.values)
def test_a_workload_serving_the_live_digest_is_not_flagged(dev, live, kubernetes_api, kind):
    kubernetes_api.run(
        "fraud-score", model="fraud-score", images=[[digest("1.0"), SIDECAR]] * 2, kind=kind
    )

    report = observe_runtime(dev.pk)

    assert report["flagged"] == [] and report["not_running"] == []
    observation = WorkloadObservation.objects.get()
    assert (observation.kind, observation.workload) == (kind, "fraud-score")
    assert (observation.served_sha256, observation.source) == (digest("1.0"), DigestSource.IMAGE)
    assert observation.matches_ledger and observation.live_deployment == live
    assert observation.ready_replicas == 2
    assert not UnauthorisedChange.objects.exists()
    (seen,) = events(AuditAction.WORKLOAD_OBSERVED)
    assert seen.data["matches_ledger"] is True and seen.actor_kind == "system"
    assert seen.data["kind"] == kind
    # Read only, by label, with the token from the named variable.
    paths = {path: query for path, query, _ in kubernetes_api.requests}
    by_label = {"labelSelector": "gatehouse.io/model"}
    assert paths == {
        f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments": by_label,
        f"/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets": by_label,
        f"/apis/apps/v1/namespaces/{NAMESPACE}/daemonsets": by_label,
        f"/apis/batch/v1/namespaces/{NAMESPACE}/cronjobs": by_label,
        # All Jobs: a CronJob's carry its job template's labels, which need not name the model.
        f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs": {},
        f"/api/v1/namespaces/{NAMESPACE}/pods": by_label,
    }
    assert {auth for _, _, auth in kubernetes_api.requests} == {f"Bearer {TOKEN}"}


@pytest.mark.parametrize("kind", WorkloadKind.values)
def test_a_workload_running_an_unregistered_image_is_flagged(
    dev, live, kubernetes_api, login, requester, kind
):
    """An image no build in the registry produced, in either kind of workload."""
    unregistered = "9" * 64
    kubernetes_api.run("fraud-score", model="fraud-score", images=[[unregistered]], kind=kind)

    report = observe_runtime(dev.pk)

    flag = UnauthorisedChange.objects.get()
    assert report["flagged"] == [flag.pk] and report["not_running"] == []
    assert (flag.deployment, flag.reported_sha256) == (live, unregistered)
    assert not ModelVersion.objects.filter(artifact_sha256=unregistered).exists()
    observation = flag.workload_observation
    assert (observation.kind, observation.source) == (kind, DigestSource.IMAGE)
    assert not observation.matches_ledger
    (detected,) = events(AuditAction.DEPLOYMENT_UNAUTHORISED_CHANGE_DETECTED)
    assert (detected.data["kind"], detected.data["workload"]) == (kind, "fraud-score")
    told = requester.notifications.get(key=f"unauthorised:{flag.pk}:flagged")
    assert f"the cluster shows {kind} {NAMESPACE}/fraud-score serving" in told.body
    page = login(requester).get("/releases/environments/dev/").content.decode()
    section = page[page.index('aria-label="Ledger and runtime"') :]
    assert f'{kind} <span class="mono">fraud-score</span>' in section


@pytest.mark.parametrize("other", [WorkloadKind.STATEFUL_SET, WorkloadKind.DAEMON_SET])
def test_a_deployment_and_another_kind_of_one_name_are_two_workloads(
    dev, live, kubernetes_api, other
):
    """Kubernetes keeps them apart; so does the ledger's comparison: the other workload's
    foreign digest is not hidden behind the Deployment that serves the live one, though both
    select the same labels."""
    kubernetes_api.run("fraud-score", model="fraud-score", images=[[digest("1.0")]])
    kubernetes_api.run(
        "fraud-score",
        model="fraud-score",
        images=[[digest("1.1")], [digest("1.1")], [digest("1.1")]],
        kind=other,
    )

    observe_runtime(dev.pk)

    assert observed("kind", "served_sha256", "ready_replicas") == {
        WorkloadKind.DEPLOYMENT: (digest("1.0"), 1),
        other: (digest("1.1"), 3),
    }
    flag = UnauthorisedChange.objects.get()
    assert flag.workload_observation.kind == other


@pytest.mark.parametrize("resource", ["statefulsets", "daemonsets", "cronjobs", "jobs"])
def test_a_role_without_a_kind_is_a_failed_read_not_an_empty_one(
    dev, live, kubernetes_api, resource
):
    """A Role written before the kind was observed: the read fails and says which resource,
    rather than concluding that nothing runs; the last good read's observations stand."""
    kubernetes_api.run("fraud-score", model="fraud-score", images=[[digest("1.0")]])
    observe_runtime(dev.pk)
    before = WorkloadObservation.objects.get()
    kubernetes_api.forbidden.add(resource)
    kubernetes_api.run("fraud-score", model="fraud-score", images=[[digest("1.1")]])

    report = observe_runtime(dev.pk)

    assert "403" in report["error"] and f"listing {resource}" in report["error"]
    assert "not_running" not in report
    assert list(WorkloadObservation.objects.all()) == [before]
    assert WorkloadObservation.objects.get().last_seen_at == before.last_seen_at
    assert not UnauthorisedChange.objects.exists()
    assert not ModelNotRunning.objects.exists()


def test_a_model_served_only_by_a_daemon_set_is_running(dev, live, kubernetes_api):
    """One scorer per node: the DaemonSet serves the live digest, so the model is running and
    no outage is recorded; its ready count is the DaemonSet's `numberReady`."""
    kubernetes_api.run(
        "fraud-score-node",
        model="fraud-score",
        images=[[digest("1.0")]] * 3,
        kind=WorkloadKind.DAEMON_SET,
    )

    assert observe_runtime(dev.pk)["not_running"] == []
    assert observe_runtime(dev.pk)["not_running"] == []

    assert not ModelNotRunning.objects.exists()
    assert not events(AuditAction.RUNTIME_NOT_RUNNING)
    observation = WorkloadObservation.objects.get()
    assert (observation.kind, observation.workload) == (WorkloadKind.DAEMON_SET, "fraud-score-node")
    assert observation.matches_ledger and observation.ready_replicas == 3


def test_a_daemon_set_naming_another_digest_is_flagged(dev, live, kubernetes_api):
    kubernetes_api.run(
        "fraud-score-node",
        model="fraud-score",
        annotation=f"sha256:{digest('1.1')}",
        images=[[digest("1.0")]],
        kind=WorkloadKind.DAEMON_SET,
    )

    report = observe_runtime(dev.pk)

    flag = UnauthorisedChange.objects.get()
    assert report["flagged"] == [flag.pk] and report["not_running"] == []
    assert (flag.deployment, flag.reported_sha256) == (live, digest("1.1"))
    observation = flag.workload_observation
    assert (observation.kind, observation.source) == (
        WorkloadKind.DAEMON_SET,
        DigestSource.ANNOTATION,
    )


def test_a_workload_serving_a_foreign_digest_is_flagged_once(
    dev, live, kubernetes_api, administrator
):
    kubernetes_api.run("fraud-score", model="fraud-score", annotation=f"sha256:{digest('1.1')}")

    report = observe_runtime(dev.pk)

    flag = UnauthorisedChange.objects.get()
    assert report["flagged"] == [flag.pk]
    assert (flag.deployment, flag.expected_sha256, flag.reported_sha256) == (
        live,
        digest("1.0"),
        digest("1.1"),
    )
    observation = flag.workload_observation
    assert (observation.workload, observation.source) == ("fraud-score", DigestSource.ANNOTATION)
    assert not observation.matches_ledger
    (detected,) = events(AuditAction.DEPLOYMENT_UNAUTHORISED_CHANGE_DETECTED)
    assert detected.data["workload"] == "fraud-score" and detected.data["namespace"] == NAMESPACE

    # Every later poll sees it again: the dates move, nothing is flagged or audited again,
    # not even once the flag has been reviewed.
    first_seen = observation.first_seen_at
    assert observe_runtime(dev.pk)["flagged"] == []
    unauthorised_change_review(actor=administrator, flag=flag, note="Hotfix, CR to follow")
    assert observe_runtime(dev.pk)["flagged"] == []
    observation.refresh_from_db()
    assert observation.first_seen_at == first_seen < observation.last_seen_at
    assert UnauthorisedChange.objects.count() == 1
    assert len(events(AuditAction.WORKLOAD_OBSERVED)) == 1

    # Another digest in the same workload is another observation, and another flag.
    kubernetes_api.run("fraud-score", model="fraud-score", annotation=digest("1.2"))
    report = observe_runtime(dev.pk)
    assert UnauthorisedChange.objects.count() == 2
    assert UnauthorisedChange.objects.get(pk=report["flagged"][0]).reported_sha256 == digest("1.2")


def test_pods_on_two_digests_are_two_observations_one_flagged(dev, live, kubernetes_api):
    """A rolling update half done: each pod's image digest is read from its containerStatuses;
    a sidecar next to the model's container is not taken for the model."""
    kubernetes_api.run(
        "fraud-score",
        model="fraud-score",
        images=[[digest("1.0"), SIDECAR], [digest("1.1"), SIDECAR]],
    )

    observe_runtime(dev.pk)

    served = dict(WorkloadObservation.objects.values_list("served_sha256", "matches_ledger"))
    assert served == {digest("1.0"): True, digest("1.1"): False}
    assert UnauthorisedChange.objects.get().reported_sha256 == digest("1.1")


def test_a_cron_job_naming_the_live_digest_keeps_the_model_running_between_runs(
    dev, live, kubernetes_api, login, auditor
):
    """Batch scoring: no Job runs now, and the model is still served; suspended, it serves
    nothing and the outage is recorded once; resumed, the model runs again."""
    kubernetes_api.run(
        "fraud-score-batch", model="fraud-score", annotation=digest("1.0"), kind="CronJob"
    )

    assert observe_runtime(dev.pk)["not_running"] == []

    observation = WorkloadObservation.objects.get()
    assert (observation.kind, observation.workload) == (WorkloadKind.CRON_JOB, "fraud-score-batch")
    assert (observation.source, observation.ready_replicas) == (DigestSource.ANNOTATION, 0)
    assert observation.matches_ledger and observation.serving
    assert not ModelNotRunning.objects.exists()

    kubernetes_api.run(
        "fraud-score-batch",
        model="fraud-score",
        annotation=digest("1.0"),
        kind="CronJob",
        suspended=True,
    )
    assert observe_runtime(dev.pk)["not_running"] == ["fraud-score"]
    assert observe_runtime(dev.pk)["not_running"] == ["fraud-score"]

    assert ModelNotRunning.objects.get().deployment == live
    assert len(events(AuditAction.RUNTIME_NOT_RUNNING)) == 1
    observation.refresh_from_db()
    assert not observation.serving and not UnauthorisedChange.objects.exists()
    page = login(auditor).get("/releases/environments/dev/").content.decode()
    section = page[page.index('aria-label="Ledger and runtime"') :]
    assert "suspended, last seen" in section
    assert 'not running</span> <span class="muted">since ' in section

    kubernetes_api.run(
        "fraud-score-batch", model="fraud-score", annotation=digest("1.0"), kind="CronJob"
    )
    assert observe_runtime(dev.pk)["not_running"] == []
    assert len(events(AuditAction.RUNTIME_RUNNING_AGAIN)) == 1
    assert not ModelNotRunning.objects.exists()


def test_a_cron_job_whose_job_ran_an_unapproved_image_is_flagged_suspended_or_not(
    dev, live, kubernetes_api
):
    """Its Jobs' pods stay listed after their run: what they ran is seen even once the CronJob
    is suspended, which stops it serving but not the flag."""
    unregistered = "9" * 64
    kubernetes_api.run(
        "fraud-score-batch",
        model="fraud-score",
        images=[[digest("1.0")], [unregistered, SIDECAR]],
        kind="CronJob",
        suspended=True,
    )

    report = observe_runtime(dev.pk)

    flag = UnauthorisedChange.objects.get()
    assert report["flagged"] == [flag.pk] and report["not_running"] == ["fraud-score"]
    assert (flag.deployment, flag.reported_sha256) == (live, unregistered)
    assert flag.workload_observation.workload == "fraud-score-batch"
    served = dict(WorkloadObservation.objects.values_list("served_sha256", "ready_replicas"))
    assert served == {digest("1.0"): 2, unregistered: 2}


def test_a_cron_job_is_served_by_its_own_jobs_pods_only(dev, live, kubernetes_api):
    """Pods are the CronJob's when their Job is one it controls, by uid: not the pods of
    another CronJob's Jobs whose names start with its name, nor those of a Job run alone and
    named as its would be."""
    unregistered = "9" * 64
    kubernetes_api.run("fraud-score", model="fraud-score", kind="CronJob")
    kubernetes_api.run(
        "fraud-score-nightly", model="fraud-score", images=[[digest("1.1")]], kind="CronJob"
    )
    kubernetes_api.run(
        "fraud-score-29012340", model="fraud-score", images=[[unregistered]], kind="Job"
    )

    observe_runtime(dev.pk)

    assert observed("workload", "served_sha256", "source") == {
        "fraud-score": ("", DigestSource.UNKNOWN),
        "fraud-score-nightly": (digest("1.1"), DigestSource.IMAGE),
    }
    flag = UnauthorisedChange.objects.get()
    assert flag.workload_observation.workload == "fraud-score-nightly"
    assert flag.reported_sha256 == digest("1.1")


def test_a_live_deployment_with_no_workload_is_not_running(
    dev, live, kubernetes_api, login, auditor
):
    kubernetes_api.run("churn", model="churn-model", images=[[SIDECAR]])

    report = observe_runtime(dev.pk)

    assert report["not_running"] == ["fraud-score"]
    assert report["unknown_models"] == [
        {"kind": "Deployment", "workload": "churn", "model": "churn-model"}
    ]
    assert not WorkloadObservation.objects.exists()
    page = login(auditor).get("/releases/environments/dev/").content.decode()
    assert "not running" in page
    assert "churn-model" in page


def test_a_workload_of_a_model_not_live_here_is_kept_unmatched(dev, live, kubernetes_api):
    """Nothing of the model is live in dev per the ledger: there is no deployment to flag, so
    the observation says it does not match and the page shows it."""
    build_register("credit-limit", "3.0")
    kubernetes_api.run("credit", model="credit-limit", images=[[SIDECAR]])

    observe_runtime(dev.pk)

    observation = WorkloadObservation.objects.get(model__name="credit-limit")
    assert observation.live_deployment is None and not observation.matches_ledger
    assert not UnauthorisedChange.objects.exists()


def test_an_unreachable_cluster_keeps_the_last_observations_and_says_so(
    dev, live, kubernetes_api, login, auditor
):
    kubernetes_api.run("fraud-score", model="fraud-score", images=[[digest("1.0")]])
    observe_runtime(dev.pk)
    before = WorkloadObservation.objects.get()
    kubernetes_api.stop()

    failed = observe_runtime(dev.pk)
    observe_runtime(dev.pk)

    assert "error" in failed and "flagged" not in failed
    assert list(WorkloadObservation.objects.all()) == [before]
    assert WorkloadObservation.objects.get().last_seen_at == before.last_seen_at
    reading = ClusterReading.objects.get(environment=dev)
    assert reading.error and reading.failing_since is not None
    assert reading.succeeded_at == before.last_seen_at
    (unreachable,) = events(AuditAction.CLUSTER_UNREACHABLE)
    assert unreachable.data["namespace"] == NAMESPACE and unreachable.data["error"]
    page = login(auditor).get("/releases/environments/dev/").content.decode()
    assert "could not be read" in page
    assert "not running" not in page


def test_a_refused_read_is_an_error_too(dev, live, kubernetes_api, monkeypatch):
    monkeypatch.setenv(TOKEN_VARIABLE, "an-expired-token")
    assert "401" in observe_runtime(dev.pk)["error"]
    monkeypatch.delenv(TOKEN_VARIABLE)
    assert TOKEN_VARIABLE in observe_runtime(dev.pk)["error"]
    environment_update(
        actor=None,
        environment=dev,
        rank=dev.rank,
        description="",
        cluster={**cluster_settings_of(dev), "cluster_namespace": "models-prod"},
    )
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    assert "403" in observe_runtime(dev.pk)["error"]
    assert not WorkloadObservation.objects.exists()
    assert len(events(AuditAction.CLUSTER_UNREACHABLE)) == 1


def test_the_periodic_task_reads_each_mapped_environment(dev, envs, live, kubernetes_api):
    assert observe_runtimes() == 1


def test_a_cluster_needs_a_namespace(envs):
    with pytest.raises(ValidationError, match="namespace"):
        environment_update(
            actor=None,
            environment=envs["test"],
            rank=envs["test"].rank,
            description="",
            cluster={"cluster_api_server": "https://api.ocp.bank.example:6443"},
        )


def test_the_page_shows_ledger_and_runtime_with_when_each_was_seen(
    dev, live, kubernetes_api, login, auditor, clock
):
    kubernetes_api.run("fraud-score", model="fraud-score", annotation=digest("1.1"))
    observe_runtime(dev.pk)
    health_check_record(deployment=live, ok=True, latency_ms=12, status_code=200)
    batch_run_attest(
        actor=None,
        environment="dev",
        model="fraud-score",
        artifact_sha256=digest("1.0"),
        job_id="application_0042",
        host="worker-07",
        now=clock.now + timedelta(minutes=1),
    )

    page = login(auditor).get("/releases/environments/dev/").content.decode()

    section = page[page.index('aria-label="Ledger and runtime"') :]
    assert "application_0042" in section
    assert digest("1.1")[:12] in section and "not the ledger" in section
    assert "up" in section and NAMESPACE in section


def test_the_page_costs_the_same_with_3_and_30_observed_models(
    dev, ci, kubernetes_api, login, auditor
):
    client = login(auditor)

    def observe(first: int, count: int) -> int:
        for n in range(first, first + count):
            version = build_register(f"model-{n:02}", "1.0")
            deployment, _ = deployment_start(
                actor=ci.account, environment=dev, model_version=version
            )
            deployment_record_result(actor=ci.account, deployment=deployment, status="succeeded")
            health_check_record(deployment=deployment, ok=True, latency_ms=n)
            for job in ("a", "b", "c", "d"):
                batch_run_attest(
                    actor=None,
                    environment="dev",
                    model=version.model.name,
                    artifact_sha256=version.artifact_sha256,
                    job_id=f"job-{job}",
                    host="worker-01",
                )
            images = [[version.artifact_sha256]] if n % 3 else [[SIDECAR]]
            kubernetes_api.run(f"workload-{n:02}", model=version.model.name, images=images)
        observe_runtime(dev.pk)
        with CaptureQueriesContext(connection) as captured:
            page = client.get("/releases/environments/dev/").content.decode()
        assert page.count("last seen") == first + count
        return len(captured.captured_queries)

    few = observe(0, 3)
    many = observe(3, 27)
    assert few == many


def test_the_mapping_is_audited_and_no_token_is_stored(dev, kubernetes_api):
    (updated,) = events(AuditAction.ENVIRONMENT_UPDATED)
    assert updated.data["before"]["cluster_namespace"] == ""
    assert updated.data["after"] == {
        **updated.data["after"],
        "cluster_api_server": kubernetes_api.url,
        "cluster_namespace": NAMESPACE,
        "cluster_token_variable": TOKEN_VARIABLE,
    }
    assert TOKEN not in updated.body


@pytest.fixture
def dev_approved_by_release_management(dev):
    """dev's approvers are Release Management's, so that they are among those told."""
    environment_policy_change(
        actor=None,
        environment=dev,
        approval_teams=[Team.objects.get(slug="release-management")],
        needs_change_request=False,
        needs_peer_review=False,
    )
    return dev


def test_a_live_model_served_by_no_workload_is_told_once_and_again_when_it_runs(
    dev_approved_by_release_management, live, kubernetes_api, login, requester
):
    dev = dev_approved_by_release_management
    kubernetes_api.run("fraud-score", model="fraud-score", images=[[digest("1.0")]])
    observe_runtime(dev.pk)
    assert not events(AuditAction.RUNTIME_NOT_RUNNING) and not told("not-running")

    del kubernetes_api.workloads[WorkloadKind.DEPLOYMENT, "fraud-score"]
    assert observe_runtime(dev.pk)["not_running"] == ["fraud-score"]

    (stopped,) = events(AuditAction.RUNTIME_NOT_RUNNING)
    outage = ModelNotRunning.objects.get()
    assert (outage.environment, outage.model, outage.deployment) == (dev, live.model, live)
    assert stopped.data == {
        "model": "fraud-score",
        "namespace": NAMESPACE,
        "live_deployment": live.pk,
        "live_sha256": digest("1.0"),
        "since": to_json_value(outage.since),
    }
    assert (stopped.object_id, stopped.environment) == (str(live.pk), "dev")
    # The owner team (data-science), dev's approvers; not the other teams, not auditors.
    assert told("not-running") == {"requester", "peer", "release"}
    notice = requester.notifications.get(key__contains="not-running")
    assert notice.subject == "fraud-score is not running in dev"
    assert NAMESPACE in notice.body and digest("1.0")[:12] in notice.body
    page = login(requester).get("/releases/environments/dev/").content.decode()
    section = page[page.index('aria-label="Ledger and runtime"') :]
    assert 'not running</span> <span class="muted">since ' in section

    # Still not running: nothing more on the trail or in anyone's inbox.
    notified = Notification.objects.count()
    assert observe_runtime(dev.pk)["not_running"] == ["fraud-score"]
    assert len(events(AuditAction.RUNTIME_NOT_RUNNING)) == 1
    assert Notification.objects.count() == notified

    kubernetes_api.run("fraud-score", model="fraud-score", images=[[digest("1.0")]])
    assert observe_runtime(dev.pk)["not_running"] == []

    (again,) = events(AuditAction.RUNTIME_RUNNING_AGAIN)
    assert again.data["model"] == "fraud-score" and again.data["live_deployment"] == live.pk
    assert again.data["not_running_since"] == stopped.data["since"]
    assert not ModelNotRunning.objects.exists()
    assert told("running-again") == {"requester", "peer", "release"}
    observe_runtime(dev.pk)
    assert len(events(AuditAction.RUNTIME_RUNNING_AGAIN)) == 1

    # A second outage is another event and another notification.
    kubernetes_api.workloads.clear()
    observe_runtime(dev.pk)
    assert len(events(AuditAction.RUNTIME_NOT_RUNNING)) == 2
    assert requester.notifications.filter(key__contains="not-running").count() == 2


def test_a_model_never_deployed_is_never_not_running(dev, kubernetes_api):
    build_register("credit-limit", "3.0")
    kubernetes_api.run("churn", model="churn-model", images=[[SIDECAR]])

    assert observe_runtime(dev.pk)["not_running"] == []
    assert observe_runtime(dev.pk)["not_running"] == []

    assert not ModelNotRunning.objects.exists()
    assert not events(AuditAction.RUNTIME_NOT_RUNNING)
    assert not told("not-running")


def test_an_unreadable_cluster_is_told_to_platform_operations_once_per_outage(
    dev, live, kubernetes_api, platform_approver
):
    kubernetes_api.run("fraud-score", model="fraud-score", images=[[digest("1.0")]])
    observe_runtime(dev.pk)
    kubernetes_api.forbidden.add("pods")

    assert "error" in observe_runtime(dev.pk)
    assert "error" in observe_runtime(dev.pk)

    assert len(events(AuditAction.CLUSTER_UNREACHABLE)) == 1
    failing_since = ClusterReading.objects.get(environment=dev).failing_since
    assert told("unreachable") == {"platform"}
    notice = platform_approver.notifications.get(key__contains="unreachable")
    assert notice.subject == "The cluster namespace of dev cannot be read"
    assert "listing pods" in notice.body
    assert not events(AuditAction.CLUSTER_READABLE_AGAIN)

    kubernetes_api.forbidden.clear()
    observe_runtime(dev.pk)
    observe_runtime(dev.pk)

    (readable,) = events(AuditAction.CLUSTER_READABLE_AGAIN)
    reading = ClusterReading.objects.get(environment=dev)
    assert readable.data["namespace"] == NAMESPACE
    assert "listing pods" in readable.data["last_error"]
    assert readable.data["failing_since"] == to_json_value(failing_since)
    assert not reading.error and reading.failing_since is None
    assert told("readable-again") == {"platform"}
    # Nothing ran differently meanwhile: no outage of the model was concluded.
    assert not events(AuditAction.RUNTIME_NOT_RUNNING)

    # The next outage is told again.
    kubernetes_api.forbidden.add("pods")
    observe_runtime(dev.pk)
    assert platform_approver.notifications.filter(key__contains="unreachable").count() == 2
