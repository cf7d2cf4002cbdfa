"""Reading what an environment's namespace really runs, through the Kubernetes API (issue 20):
the Deployments that carry the model label, the digest their pod template's annotation names,
and the image digests their pods run. Read only (list deployments and pods); what it means
against the ledger, the runtime service decides (`releases.services.runtime`)."""

import os
from dataclasses import dataclass

import urllib3
from django.conf import settings
from kubernetes import client
from kubernetes import config as kubeconfig
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from releases.kubernetes import DIGEST_ANNOTATION, IMAGE_DIGEST, MODEL_LABEL, SHA256
from releases.models import Environment


class ClusterUnreachable(Exception):
    """The namespace could not be read: nothing may be concluded from this attempt."""


@dataclass(frozen=True)
class ObservedWorkload:
    """One Deployment as read: its model label, the digest its annotation names (hex, or
    empty), and per pod the digests of its containers' images, in container order."""

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


def _selects(deployment: client.V1Deployment, pod: client.V1Pod) -> bool:
    """The Deployment's `matchLabels` are a subset of the pod's labels (what the ReplicaSet
    selects); a selector by expressions only is taken as matching by the model label alone."""
    wanted = (deployment.spec.selector.match_labels or {}) if deployment.spec else {}
    labels = pod.metadata.labels or {}
    return all(labels.get(key) == value for key, value in wanted.items())


def workloads_read(environment: Environment) -> list[ObservedWorkload]:
    """The labelled Deployments of the environment's namespace, with their pods' images; raises
    ClusterUnreachable with the reason when the API cannot be asked or refuses."""
    timeout = settings.GATEHOUSE_KUBERNETES_TIMEOUT
    namespace = environment.cluster_namespace
    try:
        with client.ApiClient(_configuration(environment)) as api:
            deployments = client.AppsV1Api(api).list_namespaced_deployment(
                namespace, label_selector=MODEL_LABEL, _request_timeout=timeout
            )
            pods = client.CoreV1Api(api).list_namespaced_pod(
                namespace, label_selector=MODEL_LABEL, _request_timeout=timeout
            )
    except ApiException as refused:
        raise ClusterUnreachable(
            f"The API server answered {refused.status} {refused.reason} for namespace {namespace}."
        ) from refused
    except (ConfigException, urllib3.exceptions.HTTPError, OSError, ValueError) as failed:
        raise ClusterUnreachable(f"{type(failed).__name__}: {failed}"[:500]) from failed
    workloads = []
    for deployment in deployments.items:
        metadata = deployment.metadata
        template = deployment.spec.template.metadata if deployment.spec.template else None
        annotations = {**((template.annotations if template else None) or {})}
        annotations.update(metadata.annotations or {})
        labels = {**((template.labels if template else None) or {}), **(metadata.labels or {})}
        workloads.append(
            ObservedWorkload(
                name=metadata.name,
                model=labels.get(MODEL_LABEL, "").strip(),
                annotation_sha256=_digest(annotations.get(DIGEST_ANNOTATION)),
                pod_images=tuple(
                    _image_digests(pod)
                    for pod in pods.items
                    if (pod.metadata.labels or {}).get(MODEL_LABEL) == labels.get(MODEL_LABEL)
                    and _selects(deployment, pod)
                ),
                ready_replicas=(deployment.status.ready_replicas if deployment.status else 0) or 0,
            )
        )
    return workloads
