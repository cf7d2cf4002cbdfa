"""How the gate is enforced in an environment: the pipeline's own call, the platform's approval
(GitLab, GitHub) and the cluster's admission; which namespaces an environment governs; which
deployments of the ledger vouch for a workload at the cluster's door."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import OuterRef, Subquery

from registry.models import RegisteredModel
from releases.kubernetes import namespaces_parse
from releases.models import Deployment, DeploymentStatus, Environment, GateDecision, GatePurpose


@dataclass(frozen=True)
class Enforcement:
    """One way the gate is asked in an environment, and when each of its purposes last asked."""

    name: str
    how: str
    last_asked: dict[str, datetime | None]
    # Asked by the platform itself, so a pipeline that skips its own call is still stopped.
    by_platform: bool

    @property
    def latest(self) -> datetime | None:
        return max((moment for moment in self.last_asked.values() if moment), default=None)


WAYS = [
    (
        "Pipeline call",
        "the pipeline asks the gate and starts deployments through Gatehouse",
        (GatePurpose.CHECK, GatePurpose.DEPLOYMENT),
    ),
    (
        "Platform approval",
        "GitLab's protected environment or GitHub's protection rule waits for Gatehouse's answer",
        (GatePurpose.GITLAB_APPROVAL, GatePurpose.GITHUB_PROTECTION),
    ),
    (
        "Admission",
        "the cluster's API server asks Gatehouse before a workload runs",
        (GatePurpose.ADMISSION,),
    ),
]


def gate_enforcement(*, environment: Environment) -> list[Enforcement]:
    """Each way of asking with the moment each of its purposes last asked, in one query: one
    index probe per purpose (`gate_decision_purpose`), however many decisions there are."""
    latest = {
        purpose.value: Subquery(
            GateDecision.objects.filter(environment=OuterRef("pk"), purpose=purpose)
            .order_by("-decided_at")
            .values("decided_at")[:1]
        )
        for purpose in GatePurpose
    }
    moments = Environment.objects.filter(pk=environment.pk).values(**latest).get()
    return [
        Enforcement(
            name=name,
            how=how,
            last_asked={purpose.label: moments[purpose.value] for purpose in purposes},
            by_platform=GatePurpose.CHECK not in purposes,
        )
        for name, how, purposes in WAYS
    ]


def environment_for_namespace(namespace: str) -> Environment | None:
    """The environment that governs a namespace, or None. Environments are few, so they are
    read in one query and their lists parsed here."""
    for environment in Environment.objects.exclude(admission_namespaces=""):
        if namespace in namespaces_parse(environment.admission_namespaces):
            return environment
    return None


def ledger_deployment(
    *, environment: Environment, model: RegisteredModel, digests: tuple[str, ...]
) -> Deployment | None:
    """The deployment through which the ledger put one of `digests` of `model` in `environment`:
    the one live there (the latest that succeeded), or an attempt started since then and not
    finished (the gate allowed it; the platform is rolling it out). A failed attempt, a version
    replaced or rolled back since, a digest never deployed here: None."""
    deployments = Deployment.objects.filter(environment=environment, model=model).select_related(
        "model_version"
    )
    live = deployments.filter(succeeded_at__isnull=False).order_by("-succeeded_at", "-pk").first()
    in_progress = deployments.filter(status=DeploymentStatus.STARTED)
    if live is not None:
        in_progress = in_progress.filter(started_at__gte=live.succeeded_at)
    for deployment in [live, *in_progress.order_by("-started_at")]:
        if deployment is not None and deployment.model_version.artifact_sha256 in digests:
            return deployment
    return None
