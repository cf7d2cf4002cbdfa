"""A stand-in Kubernetes API server, spoken to by the real `kubernetes` client code
(releases/cluster.py): an HTTP server in a thread of the test that answers the reads the
runtime observation makes, with the shapes the API server gives:

- `GET /apis/apps/v1/namespaces/{ns}/deployments` (a DeploymentList)
- `GET /apis/apps/v1/namespaces/{ns}/statefulsets` (a StatefulSetList)
- `GET /apis/apps/v1/namespaces/{ns}/daemonsets` (a DaemonSetList)
- `GET /apis/batch/v1/namespaces/{ns}/cronjobs` (a CronJobList)
- `GET /apis/batch/v1/namespaces/{ns}/jobs` (a JobList: the Jobs CronJobs made, owned by them,
  and Jobs run alone)
- `GET /api/v1/namespaces/{ns}/pods` (a PodList, with `status.containerStatuses[].imageID`)

all with `labelSelector` (`key`, `key=value`, `key==value`, `key!=value`, comma-separated).
Like a token bound by a Role to one namespace, it answers 401 without the bearer token and 403
(a `Status`) for another namespace, for a resource the Role leaves out (`Cluster.forbidden`) or
any other path or verb."""

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

MODEL_LABEL = "gatehouse.io/model"
DIGEST_ANNOTATION = "gatehouse.io/artifact-sha256"
TOKEN = "read-only-service-account-token"
TOKEN_VARIABLE = "GATEHOUSE_TEST_CLUSTER_TOKEN"
NAMESPACE = "models-dev"
PATHS = re.compile(r"^(/apis/apps/v1|/apis/batch/v1|/api/v1)/namespaces/([^/]+)/([a-z]+)$")
# Per resource read: its API group's path, and the apiVersion and kind of its list.
LISTS = {
    "deployments": ("/apis/apps/v1", "apps/v1", "DeploymentList"),
    "statefulsets": ("/apis/apps/v1", "apps/v1", "StatefulSetList"),
    "daemonsets": ("/apis/apps/v1", "apps/v1", "DaemonSetList"),
    "cronjobs": ("/apis/batch/v1", "batch/v1", "CronJobList"),
    "jobs": ("/apis/batch/v1", "batch/v1", "JobList"),
    "pods": ("/api/v1", "v1", "PodList"),
}
WORKLOAD_RESOURCES = {
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
    "CronJob": "cronjobs",
}


def _uid(kind: str, name: str) -> str:
    return f"uid-{kind}-{name}"


def _controller(api_version: str, kind: str, name: str) -> dict:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": _uid(kind, name),
        "controller": True,
    }


@dataclass
class Workload:
    """A Deployment, a StatefulSet, a DaemonSet, a CronJob or a Job run alone, and its pods:
    per pod, the digests of its containers' images. A CronJob made one Job per pod, each
    running still; a suspended one makes no more."""

    name: str
    labels: dict[str, str]
    annotations: dict[str, str]
    pods: list[list[str]]
    kind: str = "Deployment"
    suspended: bool = False

    def _template(self) -> dict:
        return {
            "metadata": {
                "labels": {**self.labels, "app": self.name},
                "annotations": self.annotations,
            },
            "spec": {"containers": [{"name": "model", "image": "registry/model:latest"}]},
        }

    def _spec_and_status(self) -> tuple[dict, dict]:
        ready = len(self.pods)
        if self.kind == "CronJob":
            # Its Jobs' template's metadata names no model: only their pods carry the label.
            spec = {
                "schedule": "0 2 * * *",
                "suspend": self.suspended,
                "jobTemplate": {"spec": {"template": self._template()}},
            }
            active = [
                {"apiVersion": "batch/v1", "kind": "Job", "name": job, "uid": uid}
                for job, uid in self._jobs()
            ]
            return spec, {"active": active} if active else {}
        spec = {"selector": {"matchLabels": {"app": self.name}}, "template": self._template()}
        if self.kind == "DaemonSet":
            # No replicas: one pod per node the DaemonSet's pods are scheduled on.
            return spec, {
                "currentNumberScheduled": ready,
                "desiredNumberScheduled": ready,
                "numberMisscheduled": 0,
                "numberReady": ready,
            }
        return {"replicas": ready, **spec}, {"replicas": ready, "readyReplicas": ready}

    def manifest(self, namespace: str) -> dict:
        spec, status = self._spec_and_status()
        return {
            "apiVersion": "batch/v1" if self.kind == "CronJob" else "apps/v1",
            "kind": self.kind,
            "metadata": {
                "name": self.name,
                "namespace": namespace,
                "uid": _uid(self.kind, self.name),
                "labels": {**self.labels, "app": self.name},
            },
            "spec": spec,
            "status": status,
        }

    def _jobs(self) -> list[tuple[str, str]]:
        """The name and uid of the Job running each pod: one per run of a CronJob, the Job
        itself when it runs alone."""
        if self.kind == "Job":
            return [(self.name, _uid("Job", self.name))] * len(self.pods)
        if self.kind != "CronJob":
            return []
        names = [f"{self.name}-2901234{n}" for n in range(len(self.pods))]
        return [(name, _uid("Job", name)) for name in names]

    def job_objects(self, namespace: str) -> list[dict]:
        owner = [_controller("batch/v1", "CronJob", self.name)] if self.kind == "CronJob" else []
        return [
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "uid": uid,
                    "labels": {} if owner else {**self.labels, "app": self.name},
                    "ownerReferences": owner,
                },
                "spec": {
                    "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}},
                    "template": self._template(),
                },
                "status": {"active": 1},
            }
            for name, uid in dict.fromkeys(self._jobs())
        ]

    def _pod_identity(self, n: int) -> tuple[str, dict[str, str], dict]:
        """A pod's name, the labels its controller adds and the controller it names: a
        Deployment's ReplicaSet, the StatefulSet itself with the pod's ordinal name, the
        DaemonSet itself, or the Job that ran it."""
        if self.kind in ("CronJob", "Job"):
            job, uid = self._jobs()[n]
            name, owner = f"{job}-q4r{n}z", ("batch/v1", "Job", job)
            labels = {
                "batch.kubernetes.io/controller-uid": uid,
                "batch.kubernetes.io/job-name": job,
            }
        elif self.kind == "DaemonSet":
            name, owner = f"{self.name}-x{n}k2p", ("apps/v1", "DaemonSet", self.name)
            labels = {"controller-revision-hash": "5c9d7f", "pod-template-generation": "1"}
        elif self.kind == "StatefulSet":
            name, owner = f"{self.name}-{n}", ("apps/v1", "StatefulSet", self.name)
            labels = {
                "controller-revision-hash": f"{self.name}-6b8d5c",
                "statefulset.kubernetes.io/pod-name": name,
            }
        else:
            name, owner = (
                f"{self.name}-7d9f8b-{n}",
                ("apps/v1", "ReplicaSet", f"{self.name}-7d9f8b"),
            )
            labels = {"pod-template-hash": "7d9f8b"}
        return name, labels, _controller(*owner)

    def pod_objects(self, namespace: str) -> list[dict]:
        return [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {**self.labels, "app": self.name, **controller_labels},
                    "ownerReferences": [controller],
                },
                "spec": {
                    "containers": [
                        {"name": f"c{i}", "image": f"registry/c{i}:latest"}
                        for i, _ in enumerate(digests)
                    ]
                },
                "status": {
                    "phase": "Running",
                    "containerStatuses": [
                        {
                            "name": f"c{i}",
                            "image": f"registry/c{i}:latest",
                            "imageID": f"registry.bank.example/ml/c{i}@sha256:{digest}",
                            "ready": True,
                            "restartCount": 0,
                        }
                        for i, digest in enumerate(digests)
                    ],
                },
            }
            for n, digests in enumerate(self.pods)
            for name, controller_labels, controller in [self._pod_identity(n)]
        ]


@dataclass
class Cluster:
    namespace: str
    url: str = ""
    workloads: dict[tuple[str, str], Workload] = field(default_factory=dict)
    requests: list[tuple[str, dict, str]] = field(default_factory=list)
    # Resources the Role does not grant, as an older Role without statefulsets.
    forbidden: set[str] = field(default_factory=set)

    def run(
        self,
        name: str,
        *,
        model: str,
        images: list[list[str]] | None = None,
        annotation: str = "",
        labels: dict[str, str] | None = None,
        kind: str = "Deployment",
        suspended: bool = False,
    ) -> Workload:
        """Deploy (or replace) a workload of `kind` labelled for `model`, its pods running
        `images` (a CronJob's, one Job each)."""
        workload = Workload(
            name=name,
            labels={MODEL_LABEL: model, **(labels or {})},
            annotations={DIGEST_ANNOTATION: annotation} if annotation else {},
            pods=images or [],
            kind=kind,
            suspended=suspended,
        )
        self.workloads[kind, name] = workload
        return workload

    def listed(self, resource: str, selector: str) -> list[dict]:
        workloads = self.workloads.values()
        if resource == "pods":
            objects = [
                pod for workload in workloads for pod in workload.pod_objects(self.namespace)
            ]
        elif resource == "jobs":
            objects = [
                job for workload in workloads for job in workload.job_objects(self.namespace)
            ]
        else:
            objects = [
                workload.manifest(self.namespace)
                for workload in workloads
                if WORKLOAD_RESOURCES.get(workload.kind) == resource
            ]
        return [item for item in objects if _selected(item["metadata"]["labels"], selector)]


def _selected(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, selector.replace("==", "=").split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key) != value:
                return False
        elif term not in labels:
            return False
    return True


def _status(code: int, reason: str, message: str) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _handler(cluster: Cluster):
    class KubernetesApi(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self, status: int, body: dict) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self):
            url = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            cluster.requests.append((url.path, query, self.headers.get("Authorization", "")))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._answer(401, _status(401, "Unauthorized", "Unauthorized"))
            match = PATHS.match(url.path)
            group, namespace, resource = match.groups() if match else ("", "", "")
            if (
                resource not in LISTS
                or LISTS[resource][0] != group
                or namespace != cluster.namespace
                or resource in cluster.forbidden
            ):
                return self._answer(
                    403, _status(403, "Forbidden", f"{url.path} is forbidden for this account")
                )
            items = cluster.listed(resource, query.get("labelSelector", ""))
            _, api_version, list_kind = LISTS[resource]
            return self._answer(
                200,
                {
                    "kind": list_kind,
                    "apiVersion": api_version,
                    "metadata": {"resourceVersion": "4711"},
                    "items": items,
                },
            )

        def do_POST(self):
            self._answer(405, _status(405, "MethodNotAllowed", "read only"))

    return KubernetesApi


@pytest.fixture
def kubernetes_api(monkeypatch):
    """The stand-in, its token in the variable an operator would name on the environment.
    `.stop()` makes it unreachable (connection refused) mid-test."""
    cluster = Cluster(namespace=NAMESPACE)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(cluster))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    cluster.url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)

    def stop():
        server.shutdown()
        server.server_close()

    cluster.stop = stop
    yield cluster
    if thread.is_alive():
        stop()
