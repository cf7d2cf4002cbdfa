"""What Gatehouse reads from Kubernetes and OpenShift: an `admission.k8s.io/v1` AdmissionReview
of a workload, and the names of governed namespaces. Shape only: what the answer is, the
admission service decides (`releases.services.admission`)."""

import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

API_VERSION = "admission.k8s.io/v1"
MODEL_LABEL = "gatehouse.io/model"
DIGEST_ANNOTATION = "gatehouse.io/artifact-sha256"

# The kinds judged, and where each keeps the pod it runs (None: the object is the pod).
POD_TEMPLATE_PATHS: dict[str, tuple[str, ...] | None] = {
    "Pod": None,
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
JUDGED_OPERATIONS = frozenset({"CREATE", "UPDATE"})
# A DNS-1123 label, as Kubernetes names namespaces.
NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
SHA256 = re.compile(r"(?:sha256:)?([0-9a-f]{64})")
IMAGE_DIGEST = re.compile(r"@sha256:([0-9a-f]{64})$")


class MalformedReview(ValueError):
    """Not a review Gatehouse can judge. `uid` is the request's uid when it could be read, so
    that the refusal is still an AdmissionReview the API server accepts."""

    def __init__(self, message: str, *, uid: str | None = None):
        super().__init__(message)
        self.message, self.uid = message, uid


@dataclass(frozen=True)
class Workload:
    """The facts of one review: the object, the model it claims to be and the digests it
    carries (the annotation's, else the images pinned by digest)."""

    uid: str
    operation: str
    kind: str
    namespace: str
    name: str
    model: str
    digest_annotation: str
    image_digests: tuple[str, ...]
    dry_run: bool
    requested_by: str
    # An UPDATE that leaves the model, its digest and its images as they were (a scale, a
    # controller's bookkeeping) deploys nothing: the Pods it makes are reviewed themselves.
    claims_unchanged: bool = False

    @property
    def judged(self) -> bool:
        return self.operation in JUDGED_OPERATIONS and not self.claims_unchanged

    @property
    def supported(self) -> bool:
        return self.kind in POD_TEMPLATE_PATHS

    @property
    def digests(self) -> tuple[str, ...]:
        """The digests that may be the model's: the annotation's alone when it is given."""
        if self.digest_annotation:
            match = SHA256.fullmatch(self.digest_annotation.strip().lower())
            return (match.group(1),) if match else ()
        return self.image_digests

    def facts(self) -> dict[str, Any]:
        """What the decision record keeps of the review."""
        return {
            "uid": self.uid,
            "operation": self.operation,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "model_label": self.model,
            "digest_annotation": self.digest_annotation,
            "image_digests": list(self.image_digests),
            "dry_run": self.dry_run,
            "requested_by": self.requested_by,
            "claims_unchanged": self.claims_unchanged,
        }


def namespaces_parse(text: str) -> list[str]:
    """The namespaces an administrator wrote, separated by spaces or commas, in order, once
    each; raises ValueError naming the first that Kubernetes could not have."""
    names = list(dict.fromkeys(name for name in re.split(r"[\s,]+", text.strip()) if name))
    for name in names:
        if not NAMESPACE.fullmatch(name):
            raise ValueError(f"'{name}' is not a Kubernetes namespace name.")
    return names


def validate_namespace(name: str) -> None:
    if name and not NAMESPACE.fullmatch(name):
        raise ValidationError(f"'{name}' is not a Kubernetes namespace name.")


def validate_namespaces(text: str) -> None:
    try:
        namespaces_parse(text)
    except ValueError as invalid:
        raise ValidationError(str(invalid)) from invalid


def review_uid(body: Any) -> str | None:
    request = body.get("request") if isinstance(body, dict) else None
    uid = request.get("uid") if isinstance(request, dict) else None
    return uid if isinstance(uid, str) and uid and "\x00" not in uid else None


def _mapping(value: Any, where: str, uid: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedReview(f"{where} is not an object.", uid=uid)
    return value


def _text(value: Any, where: str, uid: str) -> str:
    if value is None:
        return ""
    # A NUL byte is no part of any Kubernetes name, and PostgreSQL's JSON refuses it.
    if not isinstance(value, str) or "\x00" in value:
        raise MalformedReview(f"{where} is not a string.", uid=uid)
    return value


def _strings(value: Any, where: str, uid: str) -> dict[str, str]:
    mapping = _mapping(value, where, uid)
    return {key: _text(item, f"A value of {where}", uid) for key, item in mapping.items()}


def _pod(obj: dict, kind: str, uid: str) -> dict:
    pod = obj
    for step in POD_TEMPLATE_PATHS[kind] or ():
        pod = _mapping(pod.get(step), f"{kind} field '{step}'", uid)
    return pod


def _image_digests(pod: dict, uid: str) -> tuple[str, ...]:
    spec = _mapping(pod.get("spec"), "The pod's spec", uid)
    digests = []
    for field in ("initContainers", "containers"):
        containers = spec.get(field) or []
        if not isinstance(containers, list):
            raise MalformedReview(f"The pod's {field} is not a list.", uid=uid)
        for container in containers:
            item = _mapping(container, f"An item of {field}", uid)
            image = _text(item.get("image"), "An image", uid)
            match = IMAGE_DIGEST.search(image)
            if match:
                digests.append(match.group(1))
    return tuple(dict.fromkeys(digests))


def _claims(obj: dict, kind: str, uid: str) -> tuple[str, str, tuple[str, ...]]:
    """What an object says it runs: its model label, its digest annotation (the object's own,
    else its pod template's) and the digests its images are pinned by."""
    metadata = _mapping(obj.get("metadata"), "The object's metadata", uid)
    labels = _strings(metadata.get("labels"), "metadata.labels", uid)
    annotations = _strings(metadata.get("annotations"), "metadata.annotations", uid)
    if not obj or kind not in POD_TEMPLATE_PATHS:
        return labels.get(MODEL_LABEL, "").strip(), annotations.get(DIGEST_ANNOTATION, ""), ()
    pod = _pod(obj, kind, uid)
    if pod is not obj:
        template = _mapping(pod.get("metadata"), "The pod template's metadata", uid)
        labels = {**_strings(template.get("labels"), "template labels", uid), **labels}
        annotations = {
            **_strings(template.get("annotations"), "template annotations", uid),
            **annotations,
        }
    return (
        labels.get(MODEL_LABEL, "").strip(),
        annotations.get(DIGEST_ANNOTATION, ""),
        _image_digests(pod, uid),
    )


def workload_from_review(body: Any) -> Workload:
    """The workload an AdmissionReview asks about; raises MalformedReview with what is wrong."""
    uid = review_uid(body)
    if uid is None:
        raise MalformedReview("Not an AdmissionReview: no request.uid.")
    if body.get("apiVersion") != API_VERSION or body.get("kind") != "AdmissionReview":
        raise MalformedReview(f"Only {API_VERSION} AdmissionReview is understood.", uid=uid)
    request = body["request"]
    operation = _text(request.get("operation"), "request.operation", uid)
    kind = _text(_mapping(request.get("kind"), "request.kind", uid).get("kind"), "kind", uid)
    user = _mapping(request.get("userInfo"), "request.userInfo", uid)
    obj = _mapping(request.get("object"), "request.object", uid)
    if operation in JUDGED_OPERATIONS and not obj:
        raise MalformedReview(f"A {operation} review without its object.", uid=uid)
    metadata = _mapping(obj.get("metadata"), "The object's metadata", uid)
    namespace = _text(request.get("namespace"), "request.namespace", uid) or _text(
        metadata.get("namespace"), "metadata.namespace", uid
    )
    if operation in JUDGED_OPERATIONS and not namespace:
        raise MalformedReview("The review names no namespace.", uid=uid)
    model, digest_annotation, image_digests = _claims(obj, kind, uid)
    old = _mapping(request.get("oldObject"), "request.oldObject", uid)
    return Workload(
        uid=uid,
        operation=operation,
        kind=kind,
        namespace=namespace,
        name=_text(request.get("name"), "request.name", uid)
        or _text(metadata.get("name"), "metadata.name", uid)
        or _text(metadata.get("generateName"), "metadata.generateName", uid),
        model=model,
        digest_annotation=digest_annotation,
        image_digests=image_digests,
        claims_unchanged=bool(operation == "UPDATE" and old)
        and _claims(old, kind, uid) == (model, digest_annotation, image_digests),
        dry_run=request.get("dryRun") is True,
        requested_by=_text(user.get("username"), "request.userInfo.username", uid),
    )
