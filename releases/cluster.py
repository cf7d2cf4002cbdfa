"""Reading what an environment's namespace really runs, through the Kubernetes API (issue 20):
the Deployments, StatefulSets and DaemonSets that carry the model label, the digest their pod
template's annotation names, and the image digests their pods run. Read only (list
deployments, statefulsets, daemonsets and pods); what it means against the ledger, the runtime
service decides (`releases.services.runtime`)."""

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


def _ready_replicas(status: Any) -> int | None:
    return status.ready_replicas


@dataclass(frozen=True)
class ObservedKind:
    """A kind of workload observed: how it is listed, the kind of controller its pods name, and
    how many of its pods are ready. Each keeps its pods in `spec.template` and selects them by
    `spec.selector`."""

    kind: WorkloadKind
    resource: str  # as a Role's rules name it
    list_call: Callable
    pod_controller: str
    ready: Callable[[Any], int | None] = _ready_replicas
    api: type = client.AppsV1Api


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
    observed: ObservedKind,
    workload: Any,
    pod: client.V1Pod,
) -> bool:
    """The workload's `matchLabels` are a subset of the pod's labels (what its controller
    selects), and the pod's controller, when it names one, is of the kind this workload's
    pods have: a Deployment and a StatefulSet selecting alike keep their own pods. A selector
    by expressions only is taken as matching by the model label alone."""
    controllers = [ref.kind for ref in pod.metadata.owner_references or [] if ref.controller]
    if controllers and controllers != [observed.pod_controller]:
        return False
    wanted = (workload.spec.selector.match_labels or {}) if workload.spec else {}
    labels = pod.metadata.labels or {}
    return all(labels.get(key) == value for key, value in wanted.items())


def _observed(
    observed: ObservedKind,
    workload: Any,
    pods: list[client.V1Pod],
) -> ObservedWorkload:
    metadata = workload.metadata
    template = workload.spec.template.metadata if workload.spec.template else None
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
            and _selects(observed, workload, pod)
        ),
        ready_replicas=(observed.ready(workload.status) if workload.status else 0) or 0,
    )


def _labelled(resource: str, list_call: Callable, api: object, namespace: str) -> list:
    """The objects of `resource` carrying the model label; a refusal names the resource, so
    that a Role missing it is found from the error alone."""
    try:
        return list_call(
            api,
            namespace,
            label_selector=MODEL_LABEL,
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
                for workload in _labelled(
                    observed.resource, observed.list_call, observed.api(api), namespace
                )
            ]
            pods = _labelled(
                "pods", client.CoreV1Api.list_namespaced_pod, client.CoreV1Api(api), namespace
            )
    except (ConfigException, urllib3.exceptions.HTTPError, OSError, ValueError) as failed:
        raise ClusterUnreachable(f"{type(failed).__name__}: {failed}"[:500]) from failed
    return [_observed(observed, workload, pods) for observed, workload in listed]
