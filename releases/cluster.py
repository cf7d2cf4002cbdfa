"""Reading what an environment's namespace really runs, through the Kubernetes API (issue 20):
the Deployments, StatefulSets, DaemonSets and CronJobs that carry the model label, the digest
their pod template's annotation names, and the image digests their pods run (a CronJob's are
those of its Jobs). Read only (list deployments, statefulsets, daemonsets, cronjobs, jobs and
pods); what it means against the ledger, the runtime service decides
(`releases.services.runtime`)."""

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from django.conf import settings
from kubernetes import client
from kubernetes import config as kubeconfig
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from releases.kubernetes import DIGEST_ANNOTATION, IMAGE_DIGEST, MODEL_LABEL, SHA256
from releases.models import Environment, WorkloadKind

# A Job's uid → the uid of the CronJob controlling it, for the Jobs a CronJob made.
JobOwners = dict[str, str]


def _ready_replicas(status: Any) -> int | None:
    return status.ready_replicas


def _pod_template(spec: Any) -> client.V1PodTemplateSpec | None:
    return spec.template


def _selected_by_labels(
    workload: Any, labels: dict[str, str], controller_uid: str, job_owners: JobOwners
) -> bool:
    """The workload's `matchLabels` are a subset of the pod's labels (what its controller
    selects). A selector by expressions only is taken as matching by the model label alone."""
    wanted = (workload.spec.selector.match_labels or {}) if workload.spec else {}
    return all(labels.get(key) == value for key, value in wanted.items())


def _run_by_its_jobs(
    workload: Any, labels: dict[str, str], controller_uid: str, job_owners: JobOwners
) -> bool:
    """The pod's Job is one this CronJob controls, by uid: not by a name that merely starts
    with the CronJob's, nor by labels another Job may carry too."""
    return bool(controller_uid) and job_owners.get(controller_uid) == workload.metadata.uid


def _serves_while_it_exists(spec: Any) -> bool:
    return True


@dataclass(frozen=True)
class ObservedKind:
    """A kind of workload observed: how it is listed, where it keeps its pod template, the kind
    of controller its pods name and how they are known to be its own, how many are ready, and
    whether it serves its model at all."""

    kind: WorkloadKind
    resource: str  # as a Role's rules name it
    list_call: Callable
    pod_controller: str
    ready: Callable[[Any], int | None] = _ready_replicas
    api: type = client.AppsV1Api
    pod_template: Callable[[Any], client.V1PodTemplateSpec | None] = _pod_template
    owns: Callable[[Any, dict[str, str], str, JobOwners], bool] = _selected_by_labels
    serving: Callable[[Any], bool] = _serves_while_it_exists


OBSERVED_KINDS = (
    ObservedKind(
        WorkloadKind.DEPLOYMENT,
        "deployments",
        client.AppsV1Api.list_namespaced_deployment,
        pod_controller="ReplicaSet",
    ),
    ObservedKind(
        WorkloadKind.STATEFUL_SET,
        "statefulsets",
        client.AppsV1Api.list_namespaced_stateful_set,
        pod_controller="StatefulSet",
    ),
    # One pod per node, controlled by the DaemonSet itself.
    ObservedKind(
        WorkloadKind.DAEMON_SET,
        "daemonsets",
        client.AppsV1Api.list_namespaced_daemon_set,
        pod_controller="DaemonSet",
        ready=lambda status: status.number_ready,
    ),
    # Batch scoring: it serves its model between runs too, unless suspended; its pods are its
    # Jobs', and its ready count the Jobs running now.
    ObservedKind(
        WorkloadKind.CRON_JOB,
        "cronjobs",
        client.BatchV1Api.list_namespaced_cron_job,
        pod_controller="Job",
        ready=lambda status: len(status.active or []),
        api=client.BatchV1Api,
        pod_template=lambda spec: (
            spec.job_template.spec.template if spec.job_template.spec else None
        ),
        owns=_run_by_its_jobs,
        serving=lambda spec: not spec.suspend,
    ),
)


class ClusterUnreachable(Exception):
    """The namespace could not be read: nothing may be concluded from this attempt."""


@dataclass(frozen=True)
class ObservedWorkload:
    """One workload as read: its model label, the digest its annotation names
    (hex, or empty), and per pod the digests of its containers' images, in container order."""

    kind: WorkloadKind
    name: str
    model: str
    annotation_sha256: str
    pod_images: tuple[tuple[str, ...], ...]
    ready_replicas: int
    # Whether it serves its model now: a suspended CronJob does not.
    serving: bool = True


def _configuration(environment: Environment) -> client.Configuration:
    configuration = client.Configuration()
    if not environment.cluster_api_server:
        kubeconfig.load_incluster_config(client_configuration=configuration)
    else:
        configuration.host = environment.cluster_api_server.rstrip("/")
        variable = environment.cluster_token_variable
        token = os.environ.get(variable, "") if variable else ""
        if variable and not token:
            raise ClusterUnreachable(f"The variable {variable} holding the token is not set.")
        if token:
            # The key the client looks for since 36 (its prefix is not found under the old one).
            configuration.api_key = {"BearerToken": token}
            configuration.api_key_prefix = {"BearerToken": "Bearer"}
        configuration.ssl_ca_cert = settings.GATEHOUSE_KUBERNETES_CA_FILE or None
    # A poll comes back soon: fail fast rather than retry inside one.
    configuration.retries = False
    return configuration


def _digest(value: str | None) -> str:
    match = SHA256.fullmatch((value or "").strip().lower())
    return match.group(1) if match else ""


def _image_digests(pod: client.V1Pod) -> tuple[str, ...]:
    statuses = (pod.status.container_statuses if pod.status else None) or []
    found = (IMAGE_DIGEST.search(status.image_id or "") for status in statuses)
    return tuple(match.group(1) for match in found if match)


def _selects(
    observed: ObservedKind, workload: Any, pod: client.V1Pod, job_owners: JobOwners
) -> bool:
    """The pod's controller, when it names one, is of the kind this workload's pods have (a
    Deployment and a StatefulSet selecting alike keep their own pods), and the workload owns it
    as its kind says."""
    controllers = [ref for ref in pod.metadata.owner_references or [] if ref.controller]
    if controllers and [ref.kind for ref in controllers] != [observed.pod_controller]:
        return False
    controller_uid = controllers[0].uid if controllers else ""
    return observed.owns(workload, pod.metadata.labels or {}, controller_uid, job_owners)


def _observed(
    observed: ObservedKind, workload: Any, pods: list[client.V1Pod], job_owners: JobOwners
) -> ObservedWorkload:
    metadata = workload.metadata
    pod_template = observed.pod_template(workload.spec)
    template = pod_template.metadata if pod_template else None
    annotations = {**((template.annotations if template else None) or {})}
    annotations.update(metadata.annotations or {})
    labels = {**((template.labels if template else None) or {}), **(metadata.labels or {})}
    return ObservedWorkload(
        kind=observed.kind,
        name=metadata.name,
        model=labels.get(MODEL_LABEL, "").strip(),
        annotation_sha256=_digest(annotations.get(DIGEST_ANNOTATION)),
        pod_images=tuple(
            _image_digests(pod)
            for pod in pods
            if (pod.metadata.labels or {}).get(MODEL_LABEL) == labels.get(MODEL_LABEL)
            and _selects(observed, workload, pod, job_owners)
        ),
        ready_replicas=(observed.ready(workload.status) if workload.status else 0) or 0,
        serving=observed.serving(workload.spec),
    )


def _job_owners(jobs: list[client.V1Job]) -> JobOwners:
    return {
        job.metadata.uid: ref.uid
        for job in jobs
        for ref in job.metadata.owner_references or []
        if ref.controller and ref.kind == "CronJob"
    }


def _listed(
    resource: str, list_call: Callable, api: object, namespace: str, *, labelled: bool = True
) -> list:
    """The objects of `resource`, those carrying the model label unless `labelled` is false; a
    refusal names the resource, so that a Role missing it is found from the error alone."""
    selector = {"label_selector": MODEL_LABEL} if labelled else {}
    try:
        return list_call(
            api,
            namespace,
            **selector,
            _request_timeout=settings.GATEHOUSE_KUBERNETES_TIMEOUT,
        ).items
    except ApiException as refused:
        raise ClusterUnreachable(
            f"The API server answered {refused.status} {refused.reason} listing {resource} in "
            f"namespace {namespace}."
        ) from refused


def workloads_read(environment: Environment) -> list[ObservedWorkload]:
    """The labelled workloads of the environment's namespace, of each kind observed, with their
    pods' images; raises ClusterUnreachable with the reason when the API cannot be asked or
    refuses any of the reads (a kind that cannot be listed is not an empty one)."""
    namespace = environment.cluster_namespace
    try:
        with client.ApiClient(_configuration(environment)) as api:
            listed = [
                (observed, workload)
                for observed in OBSERVED_KINDS
                for workload in _listed(
                    observed.resource, observed.list_call, observed.api(api), namespace
                )
            ]
            # All of them: a CronJob's Jobs carry the labels of its job template's metadata,
            # which need not name the model, while their pods do.
            jobs = _listed(
                "jobs",
                client.BatchV1Api.list_namespaced_job,
                client.BatchV1Api(api),
                namespace,
                labelled=False,
            )
            pods = _listed(
                "pods", client.CoreV1Api.list_namespaced_pod, client.CoreV1Api(api), namespace
            )
    except (ConfigException, urllib3.exceptions.HTTPError, OSError, ValueError) as failed:
        raise ClusterUnreachable(f"{type(failed).__name__}: {failed}"[:500]) from failed
    job_owners = _job_owners(jobs)
    return [_observed(observed, workload, pods, job_owners) for observed, workload in listed]
