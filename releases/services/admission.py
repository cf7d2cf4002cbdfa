"""Kubernetes/OpenShift admission: the cluster asks before a workload runs, so a deployment that
skipped the pipeline's gate call is still stopped (issue 21; rule 14 at the door).

A workload in a governed namespace (`Environment.admission_namespaces`) runs only when it names
its model (`gatehouse.io/model`) and carries a digest (`gatehouse.io/artifact-sha256`, else an
image pinned by digest) that the ledger put in that environment: the digest of the deployment
live there, or of an attempt started since through Gatehouse and not finished. Every Deployment
row was let in by the gate (deployment start) or is a rollback to a version approved there, so
"in the ledger" is "approved and started". The only other way in is the emergency path: an
authorised emergency change for that build that the gate allows now (break-glass, recorded and
shown to whoever applied it). Anything else is denied with every reason. Each review is one
gate decision (purpose `admission`) and one audit event, whatever the answer.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from releases.kubernetes import (
    API_VERSION,
    DIGEST_ANNOTATION,
    MODEL_LABEL,
    POD_TEMPLATE_PATHS,
    MalformedReview,
    Workload,
    review_uid,
    workload_from_review,
)
from releases.models import Environment, GatePurpose
from releases.selectors.enforcement import environment_for_namespace, ledger_deployment
from releases.selectors.gate import gate_question_resolve
from releases.services.gate import (
    EMERGENCY,
    GateAnswer,
    Reason,
    decision_data,
    gate_decision_save,
    gate_decision_tally,
    gate_judge,
)


class AdmissionCode(models.TextChoices):
    """The codes admission adds to the gate's own (stable, for whoever reads the denial)."""

    MALFORMED_REVIEW = "malformed_review", "The AdmissionReview could not be read."
    UNSUPPORTED_KIND = "unsupported_kind", "Gatehouse cannot read the workload's pods."
    UNLABELLED_WORKLOAD = "unlabelled_workload", "The workload names no model."
    NO_DIGEST = "no_digest", "The workload carries no model digest."
    NOT_IN_LEDGER = "not_in_ledger", "The ledger did not put this build in the environment."
    BREAK_GLASS = "break_glass", "Admitted under an authorised emergency change."


@dataclass(frozen=True)
class AdmissionAnswer:
    uid: str
    answer: GateAnswer
    malformed: bool = False

    def as_review(self) -> dict[str, Any]:
        """The AdmissionReview the API server expects back: the request's uid, the verdict,
        and on a denial every reason in the status message (kubectl shows it)."""
        reasons = self.answer.reasons
        response: dict[str, Any] = {"uid": self.uid, "allowed": self.answer.allowed}
        if reasons:
            response["status"] = {
                "code": 400 if self.malformed else 403,
                "reason": "BadRequest" if self.malformed else "Forbidden",
                "message": "Gatehouse: "
                + " ".join(f"[{reason.code}] {reason.message}" for reason in reasons),
            }
        if self.answer.warnings:
            response["warnings"] = [
                f"Gatehouse: {warning.message}" for warning in self.answer.warnings
            ]
        return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def _reason(code: AdmissionCode, message: str) -> Reason:
    return Reason(code.value, message)


def _short(digest: str) -> str:
    return f"{digest[:12]}…"


def _not_in_ledger(workload: Workload, answer: GateAnswer, digests: tuple[str, ...]) -> list:
    """Why a build the ledger did not deploy there is refused: that, then what the gate would
    say of deploying it now (so the way to get it in is in the message)."""
    environment, model = answer.environment, answer.model
    where = f"{environment.name} (namespace {workload.namespace})"
    listed = ", ".join(_short(digest) for digest in digests)
    first = _reason(
        AdmissionCode.NOT_IN_LEDGER,
        f"No deployment of {model.name} with digest {listed} was started through Gatehouse "
        f"in {where}; only the build live there, or one being deployed through Gatehouse, "
        "may run.",
    )
    if answer.allowed and answer.change_request is not None:
        first = _reason(
            AdmissionCode.NOT_IN_LEDGER,
            f"{answer.change_request.number} approves it, but no deployment under it was "
            f"started through Gatehouse in {where}: the pipeline starts it with "
            "POST /api/v1/deployments/ first.",
        )
    return [first, *answer.reasons]


def _judge(workload: Workload | None, environment: Environment | None, answer: GateAnswer):
    """The reasons, warnings and ledger deployment of one review, `answer` being the gate's
    judgement of the build asked about."""
    if workload is None or environment is None or not workload.judged:
        return [], [], None
    where = f"{workload.kind} {workload.name} in namespace {workload.namespace}"
    if not workload.supported:
        kinds = ", ".join(POD_TEMPLATE_PATHS)
        message = f"{where} is a {workload.kind}; Gatehouse judges {kinds}."
        return [_reason(AdmissionCode.UNSUPPORTED_KIND, message)], [], None
    if not workload.model:
        message = (
            f"{where} has no {MODEL_LABEL} label, and {workload.namespace} is governed by "
            f"{environment.name}: only workloads that name their model run there."
        )
        return [_reason(AdmissionCode.UNLABELLED_WORKLOAD, message)], [], None
    if answer.model is None:
        return list(answer.reasons), [], None
    digests = workload.digests
    if not digests:
        message = (
            f"{where} carries no valid {DIGEST_ANNOTATION} annotation and no image pinned by "
            "digest (image@sha256:…), so nothing says which build of "
            f"{answer.model.name} it runs."
        )
        return [_reason(AdmissionCode.NO_DIGEST, message)], [], None
    deployment = ledger_deployment(environment=environment, model=answer.model, digests=digests)
    if deployment is not None:
        return [], [], deployment
    change = answer.change_request
    if change is not None and change.kind == EMERGENCY and answer.allowed:
        message = (
            f"{where} is admitted under emergency change {change.number} "
            f"({change.incident_ref}), not through a deployment: report it with "
            "POST /api/v1/deployments/ so the ledger records it."
        )
        return [], [_reason(AdmissionCode.BREAK_GLASS, message)], None
    return _not_in_ledger(workload, answer, digests), [], None


@transaction.atomic
def admission_review(
    *, actor: Any, body: Any, request: Any = None, now: datetime | None = None
) -> AdmissionAnswer:
    """Answer one AdmissionReview and record the answer. A body without a readable
    `request.uid` raises MalformedReview (there is nothing the API server could match the
    answer to); any other malformed review is a recorded denial."""
    now = now or timezone.now()
    workload, problem = None, None
    try:
        workload = workload_from_review(body)
    except MalformedReview as malformed:
        if malformed.uid is None:
            raise
        problem = malformed
    environment = environment_for_namespace(workload.namespace) if workload else None
    digests = workload.digests if workload else ()
    question = gate_question_resolve(
        environment=environment or "",
        model=workload.model if workload and environment else "",
        artifact_sha256=digests[0] if digests else "",
        now=now,
    )
    # Several images pinned by digest (sidecars, init containers): ask about the one
    # registered as a build of the model, if any.
    for digest in digests[1:]:
        if question.model is None or question.model_version is not None:
            break
        candidate = gate_question_resolve(
            environment=environment, model=question.model, artifact_sha256=digest, now=now
        )
        if candidate.model_version is not None:
            question = candidate
    judged = gate_judge(question)
    reasons, warnings, deployment = _judge(workload, environment, judged)
    if problem is not None:
        reasons = [_reason(AdmissionCode.MALFORMED_REVIEW, problem.message)]
    answer = GateAnswer(question=question, kind=judged.kind, reasons=reasons, warnings=warnings)
    asked = {
        **(workload.facts() if workload else {"uid": review_uid(body)}),
        "environment": environment.name if environment else None,
        "governed": environment is not None,
        "ledger_deployment": deployment.pk if deployment else None,
    }
    decision = gate_decision_save(
        actor=actor, answer=answer, purpose=GatePurpose.ADMISSION, question=asked
    )
    audit_record(
        actor=actor,
        action=AuditAction.GATE_ADMISSION_REVIEWED,
        target=answer.model_version or answer.model or environment,
        environment=environment,
        data={**asked, **decision_data(answer, decision)},
        request=request,
    )
    gate_decision_tally(decision)
    return AdmissionAnswer(
        uid=problem.uid if problem else workload.uid, answer=answer, malformed=bool(problem)
    )
