"""What an auditor's "about" text stands for in the audit trail (registered in `audit.hooks`):
a change request with its build and its deployments, a deployment, a model with its versions,
changes and deployments, or the builds of a commit SHA (or a prefix of 7 or more hex digits)."""

import re
from collections.abc import Iterable

from django.db.models import Q

from audit.hooks import About
from registry.models import ModelVersion, RegisteredModel
from releases.models import ChangeRequest, Deployment

CHANGE_REQUEST = re.compile(r"^CR-?(\d{1,18})$", re.IGNORECASE)
DEPLOYMENT = re.compile(r"^(?:D-?|deployment\s*#?\s*|#)(\d{1,18})$", re.IGNORECASE)
HEX_PREFIX = re.compile(r"^[0-9a-f]{7,64}$", re.IGNORECASE)

MODEL = RegisteredModel._meta.label_lower
VERSION = ModelVersion._meta.label_lower
CHANGE = ChangeRequest._meta.label_lower
DEPLOY = Deployment._meta.label_lower


def _ids(values: Iterable[int]) -> set[str]:
    return {str(value) for value in values}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _of_versions(version_ids: set[int]) -> dict[str, set[str]]:
    """The versions with the change requests and deployments made of them."""
    changes = _ids(
        ChangeRequest.objects.filter(model_version_id__in=version_ids).values_list("pk", flat=True)
    )
    deployments = _ids(
        Deployment.objects.filter(model_version_id__in=version_ids).values_list("pk", flat=True)
    )
    return {VERSION: _ids(version_ids), CHANGE: changes, DEPLOY: deployments}


def change_request_about(text: str) -> About | None:
    match = CHANGE_REQUEST.match(text)
    if not match:
        return None
    change = ChangeRequest.objects.filter(pk=int(match.group(1))).first()
    if change is None:
        return About(label=f"No change request {text.upper()}")
    deployments = _ids(
        Deployment.objects.filter(
            Q(change_request=change) | Q(rollback_of__change_request=change)
        ).values_list("pk", flat=True)
    )
    return About(
        label=f"{change.number}, its build and {_plural(len(deployments), 'deployment')}",
        subjects={
            CHANGE: {str(change.pk)},
            VERSION: {str(change.model_version_id)},
            DEPLOY: deployments,
        },
    )


def deployment_about(text: str) -> About | None:
    match = DEPLOYMENT.match(text)
    if not match:
        return None
    deployment = Deployment.objects.filter(pk=int(match.group(1))).first()
    if deployment is None:
        return About(label=f"No deployment {match.group(1)}")
    subjects = {DEPLOY: {str(deployment.pk)}, VERSION: {str(deployment.model_version_id)}}
    if deployment.change_request_id:
        subjects[CHANGE] = {str(deployment.change_request_id)}
    return About(label=f"Deployment {deployment.pk} and its change request", subjects=subjects)


def model_about(text: str) -> About | None:
    model = RegisteredModel.objects.filter(name__iexact=text).first()
    if model is None:
        return None
    version_ids = set(model.versions.values_list("pk", flat=True))
    subjects = {MODEL: {str(model.pk)}, **_of_versions(version_ids)}
    return About(
        label=(
            f"Model {model.name}: {_plural(len(version_ids), 'version')}, "
            f"{_plural(len(subjects[CHANGE]), 'change request')}, "
            f"{_plural(len(subjects[DEPLOY]), 'deployment')}"
        ),
        subjects=subjects,
    )


def commit_about(text: str) -> About | None:
    if not HEX_PREFIX.match(text):
        return None
    prefix = text.lower()
    version_ids = set(
        ModelVersion.objects.filter(
            Q(commit_sha__startswith=prefix) | Q(artifact_sha256__startswith=prefix)
        ).values_list("pk", flat=True)
    )
    if not version_ids:
        return About(label=f"No build of commit or artifact {prefix}")
    return About(
        label=f"{_plural(len(version_ids), 'build')} of {prefix}, their changes and deployments",
        subjects=_of_versions(version_ids),
    )
