"""The deployment gate: one answer to "may this exact build go into this environment now?".

The question is resolved once (`releases.selectors.gate`), then judged by `RULES`, an ordered
table of small functions, each owning one stable code and saying to which kind of change it
applies. Adding a rule is one `GateCode`, one function, one row, one test and one line in
docs/change-requests.md. The gate API, deployment start (in the same transaction, under row
locks), rollback and the change request page all ask here, so they can never disagree.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record, describe_actor
from portal.rows import Statement, row_insert
from registry.models import ArtifactOutcome, LifecycleStatus
from releases.models import ChangeRequest, Deployment, Environment, GateDecision, GatePurpose
from releases.selectors.gate import (
    USABLE_STATES,
    USED_STATES,
    GateQuestion,
    SoakEvidence,
    gate_question_resolve,
)
from releases.services.change_requests import EMERGENCY_VALIDITY
from releases.states import Kind, State

# The kind of deployment a rule is asked about: a change request's kind, or a rollback.
ROLLBACK = "rollback"
NORMAL, EMERGENCY = Kind.NORMAL.value, Kind.EMERGENCY.value
STANDARD, STANDARD_TEMPLATE = Kind.STANDARD.value, Kind.STANDARD_TEMPLATE.value
# A standard change meets every rule of a normal one (soak, window, freeze, validation),
# besides matching its template.
PLANNED = frozenset({NORMAL, STANDARD})


class GateCode(models.TextChoices):
    """Every code a gate answer can carry, stable for CI scripts (exported in the OpenAPI
    schema)."""

    UNKNOWN_ENVIRONMENT = "unknown_environment", "No environment has that name."
    POLICY_MISSING = "policy_missing", "The environment has no policy yet."
    UNKNOWN_MODEL = "unknown_model", "No registered model has that name."
    UNKNOWN_VERSION = "unknown_version", "No registered version matches."
    DIGEST_MISMATCH = "digest_mismatch", "The artifact digest is not the approved build's."
    UNKNOWN_CHANGE_REQUEST = "unknown_change_request", "No change request has that number."
    WRONG_ENVIRONMENT = "wrong_environment", "The change is for another environment."
    WRONG_MODEL = "wrong_model", "The change is for another model."
    WRONG_VERSION = "wrong_version", "The change authorises another version."
    CHANGE_ALREADY_USED = "change_already_used", "The change has been deployed already."
    NO_APPROVED_CHANGE = "no_approved_change", "There is no approved change for this build."
    EMERGENCY_NOT_AUTHORISED = "emergency_not_authorised", "The emergency is not authorised."
    POLICY_EMERGENCY_NOT_ALLOWED = (
        "policy_emergency_not_allowed",
        "The policy allows no emergency changes.",
    )
    EMERGENCY_EXPIRED = "emergency_expired", "The emergency's authorisation has run out."
    POLICY_CHANGED = "policy_changed", "The policy in force asks for signatures it lacks."
    OUTSIDE_WINDOW = "outside_window", "It is outside the change's planned window."
    DEPLOYMENT_IN_PROGRESS = "deployment_in_progress", "A deployment under it has not finished."
    FREEZE_IN_EFFECT = "freeze_in_effect", "The environment is frozen."
    SOAK_NOT_MET = "soak_not_met", "The build has not soaked long enough in test."
    PIPELINE_NOT_GREEN = "pipeline_not_green", "The commit's CI pipeline is not green."
    RETROSPECTIVE_OVERDUE = "retrospective_overdue", "An emergency's retrospective is overdue."
    RECORD_INCONSISTENT = (
        "record_inconsistent",
        "The change's rows are not what the audit trail records.",
    )
    CONFLICTING_CHANGE = (
        "conflicting_change",
        "Another change to the model and environment has an overlapping window.",
    )
    WINDOW_TOUCHES_FREEZE = "window_touches_freeze", "A freeze begins inside the change's window."
    DEPENDENCY_CONFLICT = (
        "dependency_conflict",
        "A model this one depends on, or that depends on it, changes in an overlapping window.",
    )
    SIGNER_OVERLOADED = (
        "signer_overloaded",
        "The only approver of a team is needed on too many changes that day.",
    )
    MODEL_RETIRED = "model_retired", "The model is retired."
    VALIDATION_MISSING = "validation_missing", "No Model Risk validation covers the build."
    VALIDATION_EXPIRED = "validation_expired", "The build's validation has expired."
    VALIDATION_REJECTED = "validation_rejected", "Model Risk rejected the build's validation."
    FINDINGS_OVERDUE = "findings_overdue", "A high validation finding is past its due date."
    ARTIFACT_CHANGED = "artifact_changed", "The artifact in its store is no longer the build's."
    ARTIFACT_UNVERIFIED = "artifact_unverified", "No store has verified the build's artifact."
    NOT_WITHIN_TEMPLATE = (
        "not_within_template",
        "The standard change differs from its template, or the template may not serve.",
    )


@dataclass(frozen=True)
class Reason:
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Rule:
    """One row of the gate: its code, the function that returns the refusal's sentence (or
    None when the rule holds), the kinds of deployment it refuses, those it only warns (unless
    the policy's `blocks_where_policy` flag makes them refusals), and, for a rule that says a
    name matches nothing, the input field that named it."""

    code: GateCode
    check: Callable[[GateQuestion], str | None]
    blocks: frozenset[str]
    warns: frozenset[str] = frozenset()
    field: str = ""
    # A policy flag that turns the warning into a refusal where the policy in force sets it.
    blocks_where_policy: str = ""

    def refuses(self, kind: str, question: GateQuestion) -> bool:
        if kind in self.blocks:
            return True
        policy = question.policy
        return bool(
            self.blocks_where_policy and policy and getattr(policy, self.blocks_where_policy)
        )


@dataclass
class GateAnswer:
    question: GateQuestion
    kind: str
    reasons: list[Reason] = field(default_factory=list)
    warnings: list[Reason] = field(default_factory=list)
    # The recorded decision, once `gate_decide` has kept the answer.
    decision: GateDecision | None = None

    @property
    def allowed(self) -> bool:
        return not self.reasons

    @property
    def decided_at(self) -> datetime:
        return self.question.now

    @property
    def environment(self):
        return self.question.environment

    @property
    def model(self):
        return self.question.model

    @property
    def model_version(self):
        return self.question.model_version

    @property
    def change_request(self) -> ChangeRequest | None:
        return self.question.change_request

    @property
    def policy(self):
        return self.question.policy

    @property
    def soak(self) -> SoakEvidence | None:
        """The soak evidence, where the soak rule applies to this kind of deployment."""
        applies = self.kind in RULE_BY_CODE[GateCode.SOAK_NOT_MET].blocks
        return self.question.soak if applies else None

    def codes(self) -> list[str]:
        return [reason.code for reason in self.reasons]

    def as_dict(self) -> dict[str, Any]:
        """The one serialised form of an answer: the API's body, the refusal's reasons, the
        recorded decision and its audit event all use it."""
        soak = self.soak
        return {
            "allowed": self.allowed,
            "change_request": self.change_request.number if self.change_request else None,
            "reasons": [reason.as_dict() for reason in self.reasons],
            "warnings": [reason.as_dict() for reason in self.warnings],
            "policy_version": self.policy.version if self.policy else None,
            "soak": (
                {
                    "source": soak.source.name,
                    "days": soak.days,
                    "deployment": soak.deployment_id,
                    "live_from": soak.started_at,
                    "live_until": soak.ended_at,
                    "rolled_back_at": soak.rolled_back_at,
                    "failed_health_checks": soak.failed_checks,
                    "earliest_allowed_at": soak.earliest_allowed_at,
                    "holds": soak.holds,
                }
                if soak
                else None
            ),
            "decided_at": self.decided_at,
        }


def _when(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")


def _digest(sha256: str) -> str:
    return f"{sha256[:12]}…"


REGISTER_BUILD = (
    "CI registers each build (gatehouse_ci.py build, docs/ci.md); register it, or name a "
    "version the model's page lists."
)
PIPELINE_REREAD = "the gate reads its status again within minutes."
# What the requester does next when the change they named is not approved (yet).
NOT_APPROVED_NEXT = {
    State.DRAFT: "Its requester submits it for review on its page.",
    State.IN_REVIEW: "It waits for its peer review; the change's page says who may give it.",
    State.IN_APPROVAL: "It waits for team sign-offs; the change's page says whose.",
}


# -- the rules, in the order their reasons are listed -------------------------------------------


def unknown_environment(q: GateQuestion) -> str | None:
    if q.environment is None:
        return (
            f"There is no environment named '{q.asked['environment']}'. Names are exact "
            "(dev, test, prod …): use one the portal's Environments page lists."
        )
    return None


def policy_missing(q: GateQuestion) -> str | None:
    if q.environment is not None and q.policy is None:
        return (
            f"{q.environment.name} has no policy yet, so nothing may be deployed there. An "
            "administrator sets one in Admin → Environment policies."
        )
    return None


def unknown_model(q: GateQuestion) -> str | None:
    if q.model is None:
        return (
            f"There is no registered model named '{q.asked['model']}'. Check the name on the "
            "portal's Registry page, or register the model first (POST /api/v1/models/)."
        )
    return None


def unknown_version(q: GateQuestion) -> str | None:
    if q.model is None or q.model_version is not None:
        return None
    if q.asked["version"]:
        return f"{q.model.name} has no registered version '{q.asked['version']}'. {REGISTER_BUILD}"
    if q.asked["artifact_sha256"]:
        digest = _digest(q.asked["artifact_sha256"])
        return (
            f"No registered version of {q.model.name} has artifact digest {digest}. "
            f"{REGISTER_BUILD}"
        )
    return "Name the version or the artifact digest to deploy, then ask again."


def digest_mismatch(q: GateQuestion) -> str | None:
    """Rule 1: the digest CD deploys is the one registered with the version, and the one the
    change request approved."""
    version, asked = q.model_version, q.asked["artifact_sha256"]
    if version is None:
        return None
    if asked and version.artifact_sha256 != asked:
        return (
            f"{version} was registered with artifact digest {_digest(version.artifact_sha256)}, "
            f"not {_digest(asked)}. Deploy the artifact registered with {version}, or "
            "register this build as a new version."
        )
    cr = q.change_request
    if cr is not None and cr.model_version_id != version.pk and _same_model(q):
        approved = cr.model_version
        if approved.artifact_sha256 != version.artifact_sha256:
            return (
                f"{cr.number} authorises {approved} with artifact digest "
                f"{_digest(approved.artifact_sha256)}, not {version} "
                f"({_digest(version.artifact_sha256)}). Deploy {approved}, or file a change "
                f"for {version}."
            )
    return None


def unknown_change_request(q: GateQuestion) -> str | None:
    if q.change_request_named and q.change_request is None:
        return (
            f"There is no change request {q.asked['change_request']}. Check the number on the "
            "portal's Change requests page (numbers look like CR-42)."
        )
    return None


def _same_model(q: GateQuestion) -> bool:
    return q.model is None or q.change_request.model_version.model_id == q.model.pk


def wrong_environment(q: GateQuestion) -> str | None:
    cr, env = q.change_request, q.environment
    if cr is not None and env is not None and cr.environment_id != env.pk:
        return (
            f"{cr.number} is for {cr.environment.name}, not {env.name}. Name a change filed "
            f"for {env.name}, or file one."
        )
    return None


def wrong_model(q: GateQuestion) -> str | None:
    cr = q.change_request
    if cr is not None and not _same_model(q):
        return (
            f"{cr.number} is for {cr.model_version.model.name}, not {q.model.name}. Name a "
            f"change filed for {q.model.name}, or file one."
        )
    return None


def wrong_version(q: GateQuestion) -> str | None:
    cr, version = q.change_request, q.model_version
    if cr is None or version is None or cr.model_version_id == version.pk or not _same_model(q):
        return None
    if cr.model_version.artifact_sha256 != version.artifact_sha256:
        return None  # digest_mismatch says it
    return (
        f"{cr.number} authorises {cr.model_version}, not {version}. Deploy "
        f"{cr.model_version}, or file a change for {version}."
    )


def change_already_used(q: GateQuestion) -> str | None:
    """Rule 9: one change, one release. A failed attempt leaves the change usable, even once it
    has been rolled back."""
    cr = q.change_request
    if cr is not None and (cr.state in USED_STATES or q.attempt_succeeded):
        return (
            f"{cr.number} has already been deployed; one change authorises one release. File "
            "a new change request to release again."
        )
    return None


def no_approved_change(q: GateQuestion) -> str | None:
    cr = q.change_request
    if cr is None:
        if q.policy is not None and q.policy.needs_change_request:
            return (
                f"{q.environment.name} needs an approved change request for this build, "
                "and none was named. File one on the portal (Change requests → New), and "
                "name its number once it is approved."
            )
        return None
    if cr.state not in USED_STATES and cr.state != USABLE_STATES[Kind.NORMAL]:
        return (
            f"{cr.number} is {cr.get_state_display().lower()}, not approved. "
            f"{NOT_APPROVED_NEXT.get(cr.state, 'File a new change request.')}"
        )
    return None


def not_within_template(q: GateQuestion) -> str | None:
    """Issue 18, rule 18: a standard change goes only where and as its template allows: same
    model, an environment of the template, same repository and pipeline, commits since the
    template's build that touch only its paths (read from git at submission), while the
    template is approved, not revoked, not expired and not used up. A template's own approval
    authorises no deployment."""
    cr = q.change_request
    if cr is None:
        return None
    if cr.kind == STANDARD_TEMPLATE:
        return (
            f"{cr.number} approves standard change template ST-{cr.standard_template_id}; it "
            "authorises standard changes made under it, not a deployment: file a standard "
            "change under the template to deploy a build."
        )
    template = q.template
    if template is None:
        return (
            f"{cr.number} names no standard change template: file it again under an approved "
            "template, or as a normal change."
        )
    version = cr.model_version
    differs = []
    if not template.approved:
        differs.append("the template is not approved")
    if template.revoked_at is not None:
        differs.append(f"the template was revoked at {_when(template.revoked_at)}")
    if q.now >= template.valid_until:
        differs.append(f"the template expired at {_when(template.valid_until)}")
    if template.uses >= template.max_uses:
        differs.append(f"the template has been used {template.uses} of {template.max_uses} times")
    if version.model_id != template.model_id:
        differs.append(f"it is for {version.model.name}, another model")
    if not template.serves_environment:
        differs.append(f"the template does not serve {cr.environment.name}")
    if version.repository_id != template.repository_id:
        differs.append("its build comes from another repository")
    if not (version.build_url or "").startswith(template.pipeline):
        differs.append(f"its build is not from the pipeline {template.pipeline}")
    diff = cr.template_diff or {}
    if not diff.get("known"):
        differs.append(
            f"its commits could not be compared with the template's ({diff.get('note', '')})"
        )
    elif diff.get("outside"):
        shown = ", ".join(diff["outside"][:5])
        more = f" and {len(diff['outside']) - 5} more" if len(diff["outside"]) > 5 else ""
        differs.append(f"its commits touch {shown}{more}, outside the template's paths")
    if not differs:
        return None
    return (
        f"{cr.number} is not within {template.number}: {'; '.join(differs)}. File it as a "
        "normal change, which takes the full sign-off path."
    )


def emergency_not_authorised(q: GateQuestion) -> str | None:
    cr = q.change_request
    if cr.state not in USED_STATES and cr.state != USABLE_STATES[Kind.EMERGENCY]:
        return (
            f"Emergency change {cr.number} is {cr.get_state_display().lower()}; "
            "an emergency approver (the change manager on duty) must authorise it on its page "
            "first."
        )
    return None


def policy_emergency_not_allowed(q: GateQuestion) -> str | None:
    if q.policy is not None and not q.policy.emergency_allowed:
        return (
            f"The {q.change_request.environment.name} policy (v{q.policy.version}) does not "
            "allow emergency changes. File a normal change instead."
        )
    return None


def emergency_expired(q: GateQuestion) -> str | None:
    """Rule 11: an emergency authorisation is valid for 24 hours."""
    cr, authorised_at = q.change_request, q.authorised_at
    expired = authorised_at is not None and q.now > authorised_at + EMERGENCY_VALIDITY
    if cr.state == USABLE_STATES[Kind.EMERGENCY] and expired:
        return (
            f"Emergency change {cr.number} was authorised at {_when(authorised_at)} and "
            f"was valid for {EMERGENCY_VALIDITY.total_seconds() / 3600:.0f} hours. File a new "
            "emergency change to deploy the fix."
        )
    return None


def policy_changed(q: GateQuestion) -> str | None:
    """Rule 13: an approved change satisfies the policy in force when it deploys, not only the
    one it was approved under."""
    cr, policy = q.change_request, q.policy
    if cr is None or policy is None or cr.state != USABLE_STATES[Kind.NORMAL]:
        return None
    missing = list(q.unsigned_teams)
    if (policy.needs_peer_review or cr.kind == STANDARD) and not q.peer_reviewed:
        missing.insert(0, "a peer review")
    if not missing:
        return None
    return (
        f"{cr.number} was approved under an earlier policy; the {q.environment.name} policy in "
        f"force (v{policy.version}) also needs {', '.join(missing)}. Ask for them on the "
        "change's page; it deploys once they have signed."
    )


def outside_window(q: GateQuestion) -> str | None:
    """Rule 8: a normal change is valid only inside its planned window."""
    cr = q.change_request
    if cr is None:
        return None
    if cr.window_start is None or cr.window_end is None:
        return f"{cr.number} has no planned window. Its requester edits it to give one."
    if q.now < cr.window_start:
        return (
            f"{cr.number} is valid from {_when(cr.window_start)} to {_when(cr.window_end)}; "
            f"it is now {_when(q.now)}. Wait until {_when(cr.window_start)} to deploy."
        )
    if q.now >= cr.window_end:
        return (
            f"{cr.number} is valid from {_when(cr.window_start)} to {_when(cr.window_end)}; "
            f"it is now {_when(q.now)}. Its window has passed: file a new change request "
            "with a new window."
        )
    return None


def deployment_in_progress(q: GateQuestion) -> str | None:
    cr = q.change_request
    if cr is not None and q.attempt_in_progress:
        return (
            f"A deployment under {cr.number} has started and not reported its result yet. "
            "Wait for its pipeline to report success or failure, then ask again."
        )
    return None


def freeze_in_effect(q: GateQuestion) -> str | None:
    """Rule 8: a freeze blocks normal changes."""
    if q.freeze is not None:
        return (
            f"{q.environment.name} is frozen until {_when(q.freeze.ends_at)}: "
            f"{q.freeze.reason}. Wait until the freeze ends, or, for an urgent fix, file an "
            "emergency change."
        )
    return None


def soak_not_met(q: GateQuestion) -> str | None:
    """Rule 7: the same artifact digest was live in the soak source, without interruption, for
    the policy's days, and was not rolled back there since (nor unhealthy, where asked)."""
    soak, version = q.soak, q.model_version
    if soak is None or soak.holds:
        return None
    build, source = f"{version} ({_digest(version.artifact_sha256)})", soak.source.name
    if soak.started_at is None:
        return (
            f"{build} has not been live in {source}; {q.environment.name} needs {soak.days} "
            f"days of it live there first. Deploy it to {source}; the soak holds {soak.days} "
            "days after it goes live there."
        )
    if soak.rolled_back_at is not None:
        return (
            f"{build} was rolled back away from in {source} at {_when(soak.rolled_back_at)}; "
            "its time there does not count as soak. Fix the build, register it as a new "
            f"version and let it soak in {source}."
        )
    if soak.void:
        return (
            f"{soak.failed_checks} health check(s) of {build} failed in {source} during its "
            "soak, and the policy asks for a healthy one. Find why it failed there; a new "
            f"build soaks in {source} again."
        )
    if soak.earliest_allowed_at is None:
        return (
            f"{build} was live in {source} only from {_when(soak.started_at)} to "
            f"{_when(soak.ended_at)}, less than {soak.days} days; the soak holds only once it "
            f"has been live there {soak.days} days in one span (not while it is not live there). "
            f"Deploy it to {source} again and let it stay live {soak.days} days."
        )
    return (
        f"{build} has been live in {source} since {_when(soak.started_at)}; the "
        f"{soak.days}-day soak holds from {_when(soak.earliest_allowed_at)}. Wait until then, "
        "or, for an urgent fix, file an emergency change."
    )


def pipeline_not_green(q: GateQuestion) -> str | None:
    """A build from a repository linked to GitLab goes nowhere while its commit's pipeline is
    not green there (as last refreshed by `registry.tasks.refresh_pipeline_status`)."""
    version = q.model_version
    if version is None:
        return None
    repository = version.repository
    if not repository.gitlab_url or repository.gitlab_project_id is None:
        return None
    if q.pipeline_status == "success":
        return None
    if q.pipeline_status:
        return (
            f"The GitLab pipeline of commit {version.commit_sha[:10]} is {q.pipeline_status}. "
            f"Make it pass in GitLab; {PIPELINE_REREAD}"
        )
    return (
        f"No GitLab pipeline result has been recorded for commit {version.commit_sha[:10]}. "
        f"Check that its pipeline ran in GitLab; {PIPELINE_REREAD}"
    )


def retrospective_overdue(q: GateQuestion) -> str | None:
    """Rule 11: an overdue retrospective blocks the model's next emergency change and is flagged
    on every other answer."""
    overdue = q.overdue_retrospective
    if overdue is None:
        return None
    return (
        f"The retrospective review of emergency change {overdue.number} for {q.model.name} was "
        f"due at {_when(overdue.due_at)}. Each approval team signs it on that change's page; "
        "until then the model takes no new emergency change."
    )


def record_inconsistent(q: GateQuestion) -> str | None:
    """Rule 17: a row the audit trail does not explain is not trusted. Reconciliation found the
    change request, one of its sign-offs or deployments, or the policy in force, changed
    outside Gatehouse's services."""
    if not q.record_inconsistent:
        return None
    what = q.change_request.number if q.change_request else f"The {q.environment.name} policy"
    return (
        f"{what} holds values the audit trail does not explain (see `manage.py "
        "audit_reconcile`); it is not trusted until the rows match the trail again. Ask an "
        "administrator to find who changed the rows and restore what the trail records."
    )


def conflicting_change(q: GateQuestion) -> str | None:
    """Issue 18: two live changes to one model and environment in overlapping windows would
    race each other; the requesters should agree an order."""
    if q.conflicting_change is None:
        return None
    return (
        f"{q.conflicting_change} also changes {q.model.name} in {q.environment.name} in a "
        "window that overlaps this change's. Agree an order with its requester and move one "
        "of the windows."
    )


def window_touches_freeze(q: GateQuestion) -> str | None:
    """Issue 18: a freeze planned to begin inside the window shortens it (`freeze_in_effect`
    refuses once it stands)."""
    if q.window_freeze_reason is None:
        return None
    return (
        f"A freeze ({q.window_freeze_reason}) begins inside this change's window. Deploy "
        "before it begins, or edit the change to end its window before the freeze."
    )


def dependency_conflict(q: GateQuestion) -> str | None:
    """Issue 18: a model and the models it depends on (the inventory's upstream models)
    changing in one environment in overlapping windows would each be tested against the other's
    old version."""
    conflict = q.dependency_conflict
    if conflict is None:
        return None
    if conflict.upstream:
        relation = f"{q.change_request.model_version.model.name} depends on it"
    else:
        relation = f"it depends on {q.change_request.model_version.model.name}"
    return (
        f"{conflict.number} changes {conflict.model} ({relation}) in "
        f"{q.change_request.environment.name} in a window that overlaps this change's. Agree "
        "an order with its requester and move one of the windows."
    )


def signer_overloaded(q: GateQuestion) -> str | None:
    """Issue 18: one person who alone can sign for a team, needed on more changes in a day than
    `GATEHOUSE_SIGNER_CHANGES_PER_DAY`, is a bottleneck and a rubber stamp in the making."""
    signer = q.signer_overloaded
    if signer is None:
        return None
    return (
        f"{signer.username} is the only approver of {signer.team} and is needed on "
        f"{signer.changes} changes whose windows start on {signer.day:%Y-%m-%d} (more than "
        f"{settings.GATEHOUSE_SIGNER_CHANGES_PER_DAY} a day). Spread the windows over more "
        f"days, or ask an administrator to give a second person the approver role in "
        f"{signer.team}."
    )


def model_retired(q: GateQuestion) -> str | None:
    """A retired model goes nowhere, rollbacks included (issue 16)."""
    if q.model is None or q.model.lifecycle_status != LifecycleStatus.RETIRED:
        return None
    return (
        f"{q.model.name} is retired in the model inventory; it is deployed nowhere any more. "
        "A successor is registered as a new model."
    )


def _validation_asked(q: GateQuestion) -> bool:
    return q.policy is not None and q.policy.requires_validation and q.model_version is not None


def validation_missing(q: GateQuestion) -> str | None:
    """Issue 16: where the policy asks for it, an independent validation covers the build."""
    if not _validation_asked(q) or q.validation is not None:
        return None
    return (
        f"No Model Risk validation covers {q.model.name} {q.model_version.version}; "
        f"{q.environment.name} takes only validated builds. Ask Model Risk to validate it "
        "(the model's page lists its validations)."
    )


def validation_expired(q: GateQuestion) -> str | None:
    """A validation is current for a time that follows the model's tier."""
    validation = q.validation
    if not _validation_asked(q) or validation is None or validation.valid_until > q.now:
        return None
    return (
        f"The validation of {q.model.name} {q.model_version.version} concluded on "
        f"{_when(validation.concluded_at)} expired on {_when(validation.valid_until)}; "
        "ask Model Risk to validate it again."
    )


def validation_rejected(q: GateQuestion) -> str | None:
    validation = q.validation
    if not _validation_asked(q) or validation is None or not validation.rejected:
        return None
    return (
        f"Model Risk rejected {q.model.name} {q.model_version.version} in its validation of "
        f"{_when(validation.concluded_at)}. Address its findings and register a new build "
        "for Model Risk to validate."
    )


def findings_overdue(q: GateQuestion) -> str | None:
    """A high finding past its remediation date holds the model back until it is remediated
    or accepted."""
    if not _validation_asked(q) or not q.findings_overdue:
        return None
    return (
        f"{q.findings_overdue} high finding(s) of {q.model.name}'s validation are open past "
        "their remediation date. The finding's owner remediates it, or Model Risk accepts "
        "it, on the model's page."
    )


def artifact_changed(q: GateQuestion) -> str | None:
    """Issue 20: the newest look at the artifact that reached its store found another digest
    there; what would be deployed is not the build that was approved."""
    if q.model_version is None or q.artifact_outcome != ArtifactOutcome.MISMATCH:
        return None
    return (
        f"The store of {q.model_version.artifact_uri} no longer holds digest "
        f"{_digest(q.model_version.artifact_sha256)}: the object changed since it was "
        "registered. Find out who replaced it; restore the registered artifact, or register "
        "the new one as a new version."
    )


def artifact_unverified(q: GateQuestion) -> str | None:
    """Issue 20: where the policy asks, a store has confirmed the build's digest at least once
    (at registration or at a deployment start); CI's word alone is not enough."""
    if q.policy is None or not q.policy.requires_verified_artifact or q.model_version is None:
        return None
    if q.artifact_outcome is not None:
        return None
    return (
        f"No store has confirmed the digest of {q.model.name} {q.model_version.version} "
        f"({q.model_version.artifact_uri}); {q.environment.name} takes only verified artifacts. "
        "Its store is read at registration and at each deployment start; if it cannot be read, "
        "an administrator connects it (GATEHOUSE_ARTIFACT_STORES, docs/operations.md)."
    )


ANY = frozenset({NORMAL, EMERGENCY, STANDARD, ROLLBACK})
DEPLOYS = frozenset({NORMAL, EMERGENCY, STANDARD})

RULES: list[Rule] = [
    Rule(GateCode.UNKNOWN_ENVIRONMENT, unknown_environment, ANY, field="environment"),
    Rule(GateCode.POLICY_MISSING, policy_missing, ANY),
    Rule(GateCode.UNKNOWN_MODEL, unknown_model, ANY, field="model"),
    Rule(GateCode.UNKNOWN_VERSION, unknown_version, DEPLOYS, field="version"),
    Rule(GateCode.DIGEST_MISMATCH, digest_mismatch, DEPLOYS),
    Rule(GateCode.UNKNOWN_CHANGE_REQUEST, unknown_change_request, DEPLOYS, field="change_request"),
    Rule(GateCode.WRONG_ENVIRONMENT, wrong_environment, DEPLOYS),
    Rule(GateCode.WRONG_MODEL, wrong_model, DEPLOYS),
    Rule(GateCode.WRONG_VERSION, wrong_version, DEPLOYS),
    Rule(GateCode.CHANGE_ALREADY_USED, change_already_used, DEPLOYS),
    Rule(GateCode.NO_APPROVED_CHANGE, no_approved_change, PLANNED),
    Rule(
        GateCode.NOT_WITHIN_TEMPLATE,
        not_within_template,
        frozenset({STANDARD, STANDARD_TEMPLATE}),
    ),
    Rule(GateCode.EMERGENCY_NOT_AUTHORISED, emergency_not_authorised, frozenset({EMERGENCY})),
    Rule(
        GateCode.POLICY_EMERGENCY_NOT_ALLOWED, policy_emergency_not_allowed, frozenset({EMERGENCY})
    ),
    Rule(GateCode.EMERGENCY_EXPIRED, emergency_expired, frozenset({EMERGENCY})),
    Rule(GateCode.POLICY_CHANGED, policy_changed, PLANNED),
    Rule(GateCode.OUTSIDE_WINDOW, outside_window, PLANNED),
    Rule(GateCode.DEPLOYMENT_IN_PROGRESS, deployment_in_progress, DEPLOYS),
    Rule(GateCode.FREEZE_IN_EFFECT, freeze_in_effect, PLANNED),
    Rule(GateCode.SOAK_NOT_MET, soak_not_met, PLANNED),
    Rule(GateCode.PIPELINE_NOT_GREEN, pipeline_not_green, DEPLOYS),
    Rule(GateCode.RECORD_INCONSISTENT, record_inconsistent, DEPLOYS),
    Rule(GateCode.MODEL_RETIRED, model_retired, ANY),
    Rule(GateCode.VALIDATION_MISSING, validation_missing, PLANNED),
    Rule(GateCode.VALIDATION_EXPIRED, validation_expired, PLANNED),
    Rule(GateCode.VALIDATION_REJECTED, validation_rejected, PLANNED),
    Rule(GateCode.FINDINGS_OVERDUE, findings_overdue, PLANNED),
    Rule(GateCode.ARTIFACT_CHANGED, artifact_changed, ANY),
    Rule(GateCode.ARTIFACT_UNVERIFIED, artifact_unverified, DEPLOYS),
    Rule(
        GateCode.RETROSPECTIVE_OVERDUE,
        retrospective_overdue,
        blocks=frozenset({EMERGENCY}),
        warns=PLANNED,
    ),
    # Issue 18: conflicts warn; collisions refuse where the policy says so.
    Rule(
        GateCode.CONFLICTING_CHANGE,
        conflicting_change,
        frozenset(),
        warns=PLANNED,
        blocks_where_policy="conflicts_block",
    ),
    Rule(
        GateCode.DEPENDENCY_CONFLICT,
        dependency_conflict,
        frozenset(),
        warns=PLANNED,
        blocks_where_policy="conflicts_block",
    ),
    Rule(
        GateCode.WINDOW_TOUCHES_FREEZE,
        window_touches_freeze,
        frozenset(),
        warns=PLANNED,
    ),
    Rule(GateCode.SIGNER_OVERLOADED, signer_overloaded, frozenset(), warns=PLANNED),
]
CONFLICT_CODES = frozenset(
    {
        GateCode.CONFLICTING_CHANGE,
        GateCode.DEPENDENCY_CONFLICT,
        GateCode.WINDOW_TOUCHES_FREEZE,
        GateCode.SIGNER_OVERLOADED,
    }
)

RULE_BY_CODE = {rule.code: rule for rule in RULES}
UNKNOWN_NAME_FIELDS = {rule.code.value: rule.field for rule in RULES if rule.field}


def gate_judge(question: GateQuestion, *, kind: str | None = None) -> GateAnswer:
    """Apply every rule of the table that concerns this kind of deployment (the change's kind,
    or `ROLLBACK`). Reads nothing: the question holds every fact."""
    kind = kind or question.change_kind
    answer = GateAnswer(question=question, kind=kind)
    for rule in RULES:
        if kind not in rule.blocks and kind not in rule.warns:
            continue
        message = rule.check(question)
        if message is not None:
            target = answer.reasons if rule.refuses(kind, question) else answer.warnings
            target.append(Reason(rule.code.value, message))
    return answer


def gate_evaluate(
    *,
    environment: Environment | str,
    model: Any,
    version: str = "",
    artifact_sha256: str = "",
    change_request: ChangeRequest | str | int | None = None,
    now: datetime | None = None,
    lock: bool = False,
) -> GateAnswer:
    """Judge one deployment without recording anything (the change request page, the filing
    form). With `lock`, the change request row is locked for the caller's transaction."""
    question = gate_question_resolve(
        environment=environment,
        model=model,
        version=version,
        artifact_sha256=artifact_sha256,
        change_request=change_request,
        now=now,
        lock=lock,
    )
    return gate_judge(question)


def gate_decision_save(
    *,
    actor: Any,
    answer: GateAnswer,
    purpose: str,
    question: dict[str, Any],
    deployment: Deployment | None = None,
) -> GateDecision:
    """Keep the answer with the policy version it applied (rule 13), inside the caller's
    transaction, which writes the audit event."""
    decision = GateDecision(
        purpose=purpose,
        environment=answer.environment,
        model=answer.model,
        model_version=answer.model_version,
        change_request=answer.change_request,
        policy=answer.policy,
        deployment=deployment,
        allowed=answer.allowed,
        reasons=[reason.as_dict() for reason in answer.reasons],
        warnings=[reason.as_dict() for reason in answer.warnings],
        question=question,
        asked_by_name=describe_actor(actor).name,
        decided_at=answer.decided_at,
    )
    # Every value comes from rows read a moment ago and from the rule table; validating them
    # again, or compiling the ORM's INSERT, would cost more than the whole judgement.
    return row_insert(decision)


# Adds one to running totals, creating their rows on first use (PostgreSQL and SQLite alike).
TALLY_ADD = (
    'INSERT INTO releases_gatetally (environment, purpose, allowed, code, "count") '
    "VALUES {rows} ON CONFLICT (environment, purpose, allowed, code) "
    'DO UPDATE SET "count" = releases_gatetally."count" + 1'
)


def gate_decision_tally_statement(decision: GateDecision) -> Statement:
    """The statement that adds one decision to the running totals that `/metrics` reads
    (`GateTally`): one row for the decision, one per code it was refused with, in key order."""
    environment = decision.environment.name if decision.environment else ""
    codes = sorted({reason["code"] for reason in decision.reasons})
    rows = ", ".join(["(%s, %s, %s, %s, 1)"] * (len(codes) + 1))
    params = [
        value
        for code in ["", *codes]
        for value in (environment, decision.purpose, decision.allowed, code)
    ]
    return TALLY_ADD.format(rows=rows), params


def gate_decision_tally(decision: GateDecision) -> None:
    """Add one decision to the running totals. Called after the decision's audit event (or
    sent with it, `audit_record(then=...)`): that append holds the trail's lock to the end of
    the transaction, so the totals' rows are only ever locked under it, and two transactions
    that record several decisions cannot wait on each other's rows."""
    with connection.cursor() as cursor:
        cursor.execute(*gate_decision_tally_statement(decision))


def decision_data(answer: GateAnswer, decision: GateDecision) -> dict[str, Any]:
    data = answer.as_dict()
    del data["soak"], data["decided_at"]
    return {"gate_decision": decision.pk, **data}


def gate_decide(
    *,
    actor: Any,
    environment: Environment | str,
    model: Any,
    version: str = "",
    artifact_sha256: str = "",
    change_request: ChangeRequest | str | int | None = None,
    request: Any = None,
    now: datetime | None = None,
    purpose: str = GatePurpose.CHECK,
    asked_by: dict[str, Any] | None = None,
) -> GateAnswer:
    """The gate as CI asks it, or a platform (`purpose`, and `asked_by` naming the platform's
    deployment): judge, then record the decision and its audit event.

    One read resolves the question (outside any transaction of its own: it only reads, as the
    change request page does), then one short transaction records what it answered: the
    decision, its audit event and the running totals. The answer is the one of the moment of
    the read, and says so (`decided_at`); a deployment start judges again under its locks."""
    answer = gate_evaluate(
        environment=environment,
        model=model,
        version=version,
        artifact_sha256=artifact_sha256,
        change_request=change_request,
        now=now,
    )
    question = {**answer.question.asked, **(asked_by or {})}
    with transaction.atomic():
        answer.decision = gate_decision_save(
            actor=actor, answer=answer, purpose=purpose, question=question
        )
        audit_record(
            actor=actor,
            action=AuditAction.GATE_CHECKED,
            target=answer.model_version or answer.model,
            environment=answer.environment,
            data={**question, "purpose": purpose, **decision_data(answer, answer.decision)},
            request=request,
            then=gate_decision_tally_statement(answer.decision),
        )
    return answer
