"""The deployment history as the read API gives it: every attempt, rollback and failure, with
what it put where and under which change."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from portal.exceptions import NotFound
from releases.models import Deployment


@dataclass(frozen=True)
class DeploymentFilters:
    environment: str = ""
    model: str = ""
    status: str = ""
    kind: str = ""
    change_request: str = ""  # its number, CR-42
    started_since: datetime | None = None


def deployments_read(*, filters: DeploymentFilters = DeploymentFilters()) -> QuerySet[Deployment]:
    """Deployments with the rows their answer names, joined: one query for any page."""
    deployments = Deployment.objects.select_related(
        "environment", "model", "model_version", "change_request"
    )
    exact = {
        "environment__name": filters.environment,
        "model__name": filters.model,
        "status": filters.status,
        "kind": filters.kind,
    }
    deployments = deployments.filter(**{key: value for key, value in exact.items() if value})
    if filters.change_request:
        deployments = deployments.filter(change_request_id=int(filters.change_request[3:]))
    if filters.started_since is not None:
        deployments = deployments.filter(started_at__gte=filters.started_since)
    return deployments.order_by("-id")


def deployment_get(*, pk: int) -> Deployment:
    found = deployments_read().filter(pk=pk).first()
    if found is None:
        raise NotFound(
            f"No deployment has the id {pk}. The Environments page lists each environment's "
            "deployments (GET /api/v1/deployments/ for a pipeline).",
            code="unknown_deployment",
        )
    return found
