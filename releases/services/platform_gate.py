"""The gate as a deployment platform asks it: GitLab, for a deployment that a protected
environment holds for approval, and GitHub, for a workflow run that an environment's deployment
protection rule holds. Neither depends on the pipeline calling `gatehouse_ci.py gate`: the
platform waits for Gatehouse's answer, so a job that skips the call, or a `.gitlab-ci.yml` edited
in a branch, is stopped all the same.

A platform knows the commit it deploys, not the model version. Every model built from that commit
in that repository is judged (its newest registered build), and the platform hears "approved"
only when each of them may go. A platform environment named `prod/credit-scoring` names the
Gatehouse environment and one model, for repositories that build several models.

The answer is recorded (a gate decision and its audit event per build) before the platform is
called, outside the transaction, so no lock waits on the network.
"""

import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record, describe_actor
from registry import github, gitlab
from registry.models import ModelVersion, Repository
from releases.models import Environment, GateDecision, GatePurpose
from releases.services.gate import GateAnswer, Reason, gate_decide, gate_decision_tally

logger = logging.getLogger(__name__)

UNREGISTERED_COMMIT = "unregistered_commit"
# GitLab's deployment status while a protected environment waits for approvals.
GITLAB_BLOCKED = "blocked"


@dataclass
class PlatformAnswer:
    environment: str
    commit_sha: str
    answers: list[GateAnswer] = field(default_factory=list)
    decisions: list[GateDecision] = field(default_factory=list)
    # Why nothing was judged: no build of the commit is registered.
    unregistered: Reason | None = None

    @property
    def allowed(self) -> bool:
        return bool(self.answers) and all(answer.allowed for answer in self.answers)

    def reasons(self) -> list[tuple[str, Reason]]:
        """Every refusal, with the build it concerns."""
        if self.unregistered is not None:
            return [("", self.unregistered)]
        return [
            (str(answer.model_version or answer.model or answer.question.asked["model"]), reason)
            for answer in self.answers
            for reason in answer.reasons
        ]

    def comment(self) -> str:
        """What the platform shows next to the approval: the verdict, then every reason with
        its code, and the recorded decisions an auditor can look up."""
        recorded = "gate decision " + ", ".join(f"#{decision.pk}" for decision in self.decisions)
        if self.allowed:
            builds = "; ".join(
                f"{answer.model_version}"
                + (f" under {answer.change_request.number}" if answer.change_request else "")
                for answer in self.answers
            )
            return f"Gatehouse approves {builds} for {self.environment} ({recorded})."
        lines = [f"Gatehouse rejects this deployment to {self.environment} ({recorded}):"]
        lines += [
            f"- {build + ': ' if build else ''}{reason.code}: {reason.message}"
            for build, reason in self.reasons()
        ]
        return "\n".join(lines)


def _builds(repository: Repository, commit_sha: str, model: str) -> list[ModelVersion]:
    """The newest registered build of each model made from the commit."""
    versions = ModelVersion.objects.filter(repository=repository, commit_sha=commit_sha)
    if model:
        versions = versions.filter(model__name=model)
    newest: dict[int, ModelVersion] = {}
    for version in versions.select_related("model").order_by("-created_at", "-id"):
        newest.setdefault(version.model_id, version)
    return sorted(newest.values(), key=lambda version: version.model.name)


def _unregistered_save(
    *, purpose: str, environment: str, reason: Reason, question: dict
) -> GateDecision:
    """No build of the commit is registered: nothing says what it would deploy, so it may not."""
    found = Environment.objects.filter(name=environment).first()
    decision = GateDecision.objects.create(
        purpose=purpose,
        environment=found,
        allowed=False,
        reasons=[reason.as_dict()],
        question=question,
        asked_by_name=describe_actor(None).name,
        decided_at=timezone.now(),
    )
    audit_record(
        actor=None,
        action=AuditAction.GATE_CHECKED,
        environment=found,
        data={
            **question,
            "purpose": purpose,
            "gate_decision": decision.pk,
            "allowed": False,
            "reasons": decision.reasons,
        },
    )
    gate_decision_tally(decision)
    return decision


@transaction.atomic
def platform_gate_decide(
    *,
    purpose: str,
    repository: Repository,
    commit_sha: str,
    environment: str,
    asked_by: dict[str, Any],
    request: Any = None,
) -> PlatformAnswer:
    """Judge every build of the commit for the platform's environment and record each answer
    with the platform's `purpose` and its own names for the deployment (`asked_by`)."""
    environment_name, _, model = environment.partition("/")
    question = {"commit_sha": commit_sha, "repository": repository.url, **asked_by}
    answer = PlatformAnswer(environment=environment_name, commit_sha=commit_sha)
    builds = _builds(repository, commit_sha, model)
    if not builds:
        answer.unregistered = Reason(
            UNREGISTERED_COMMIT,
            f"No build of commit {commit_sha[:10]} of {repository.url} is registered in "
            "Gatehouse; the pipeline registers its build before it deploys.",
        )
        answer.decisions.append(
            _unregistered_save(
                purpose=purpose,
                environment=environment_name,
                reason=answer.unregistered,
                question={"environment": environment_name, **question},
            )
        )
        return answer
    for build in builds:
        judged = gate_decide(
            actor=None,
            environment=environment_name,
            model=build.model,
            version=build.version,
            request=request,
            purpose=purpose,
            asked_by=question,
        )
        answer.answers.append(judged)
        answer.decisions.append(judged.decision)
    return answer


def gitlab_deployment_review(
    *, repository: Repository, deployment_id: int, request: Any = None
) -> PlatformAnswer | None:
    """Answer a deployment that a protected environment holds for approval. The commit and the
    environment are read from GitLab itself, not from the webhook's body; a deployment that is
    no longer blocked (answered already, cancelled) is left alone (None)."""
    deployment = gitlab.deployment_get(repository, deployment_id)
    if deployment.status != GITLAB_BLOCKED:
        logger.info(
            "GitLab deployment %s of project %s is %s, not blocked: nothing to answer.",
            deployment_id,
            repository.gitlab_project_id,
            deployment.status,
        )
        return None
    answer = platform_gate_decide(
        purpose=GatePurpose.GITLAB_APPROVAL,
        repository=repository,
        commit_sha=deployment.sha,
        environment=deployment.environment,
        asked_by={
            "platform": "gitlab",
            "gitlab_project_id": repository.gitlab_project_id,
            "gitlab_deployment_id": deployment_id,
            "platform_environment": deployment.environment,
        },
        request=request,
    )
    gitlab.deployment_approval(
        repository, deployment_id, approved=answer.allowed, comment=answer.comment()
    )
    return answer


def github_protection_rule_review(
    *,
    repository: Repository,
    commit_sha: str,
    environment: str,
    callback_url: str,
    installation_id: int,
    request: Any = None,
) -> PlatformAnswer:
    """Answer a workflow run's deployment that an environment's protection rule holds, on the
    run's callback URL, as the App's installation. A callback URL off the configured GitHub API
    is refused before anything is judged."""
    github.callback_url_check(callback_url)
    answer = platform_gate_decide(
        purpose=GatePurpose.GITHUB_PROTECTION,
        repository=repository,
        commit_sha=commit_sha,
        environment=environment,
        asked_by={
            "platform": "github",
            "github_installation_id": installation_id,
            "deployment_callback_url": callback_url,
            "platform_environment": environment,
        },
        request=request,
    )
    github.protection_rule_answer(
        callback_url,
        installation_id=installation_id,
        environment=environment,
        approved=answer.allowed,
        comment=answer.comment(),
    )
    return answer
