"""The change advisory board's agenda: the production changes whose windows fall in the coming
days, each with its risk, its conflicts and how ready it is (signatures, soak, validation),
judged by the gate as at the start of its window.

A fixed number of queries whatever the number of changes: the changes with their standing
sign-offs, the policies in force, the gate's questions for all of them in one statement
(`gate_questions_for_changes`), and the freezes and maintenance of the period."""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Prefetch

from releases.models import ChangeRequest, FreezeWindow, MaintenanceWindow, SignOff, SignOffKind
from releases.selectors.gate import LIVE_STATES, SoakEvidence, gate_questions_for_changes
from releases.selectors.policy import environment_policies_current
from releases.services.gate import CONFLICT_CODES, GateAnswer, GateCode, Reason, gate_judge
from releases.states import Kind

# Refusals the signature column already says (the change is not approved or authorised yet).
SIGNATURE_CODES = frozenset(
    {GateCode.NO_APPROVED_CHANGE, GateCode.POLICY_CHANGED, GateCode.EMERGENCY_NOT_AUTHORISED}
)


@dataclass(frozen=True)
class Signature:
    """One signature the change needs under the policy in force, and who gave it (or None)."""

    label: str
    signer: str | None


@dataclass(frozen=True)
class CabItem:
    change_request: ChangeRequest
    answer: GateAnswer
    signatures: list[Signature]
    conflicts: list[Reason] = field(default_factory=list)
    blockers: list[Reason] = field(default_factory=list)

    @property
    def judged_at(self) -> datetime:
        return self.answer.decided_at

    @property
    def soak(self) -> SoakEvidence | None:
        return self.answer.soak

    @property
    def validation(self):
        return self.answer.question.validation

    @property
    def validation_required(self) -> bool:
        policy = self.answer.policy
        return bool(policy and policy.requires_validation)

    @property
    def signatures_missing(self) -> list[str]:
        return [s.label for s in self.signatures if s.signer is None]

    @property
    def ready(self) -> bool:
        """The gate would let it through when its window opens, as things stand."""
        return self.answer.allowed


@dataclass(frozen=True)
class CabAgenda:
    start: datetime
    end: datetime
    items: list[CabItem]
    freezes: list[FreezeWindow]
    maintenance: list[MaintenanceWindow]

    @property
    def ready(self) -> int:
        return sum(item.ready for item in self.items)

    @property
    def with_conflicts(self) -> int:
        return sum(bool(item.conflicts) for item in self.items)


def _signatures(change: ChangeRequest, policy) -> list[Signature]:
    standing = {(s.kind, s.team_id): s.signer.username for s in change.standing}
    if change.kind == Kind.EMERGENCY:
        authorisations = [
            s.signer.username
            for s in change.standing
            if s.kind == SignOffKind.EMERGENCY_AUTHORISATION
        ]
        return [Signature("Emergency authorisation", next(iter(authorisations), None))]
    signatures = []
    if policy is not None and (policy.needs_peer_review or change.kind == Kind.STANDARD):
        signatures.append(
            Signature(
                f"Peer review ({change.team.name})",
                standing.get((SignOffKind.PEER_REVIEW, change.team_id)),
            )
        )
    for team in policy.teams_for(change) if policy is not None else []:
        signatures.append(Signature(team.name, standing.get((SignOffKind.APPROVAL, team.pk))))
    return signatures


def cab_agenda(*, start: datetime, end: datetime, now: datetime | None = None) -> CabAgenda:
    """The live production changes whose windows overlap `start`..`end`, earliest first, each
    judged as the gate would at the start of its window (or now, if it has begun)."""
    standing = SignOff.objects.filter(voided_at__isnull=True).select_related("signer")
    changes = list(
        ChangeRequest.objects.filter(
            environment__is_production=True,
            state__in=LIVE_STATES,
            window_end__gt=start,
            window_start__lt=end,
        )
        .select_related("model_version__model", "environment", "team", "requester", "risk_policy")
        .prefetch_related(Prefetch("sign_offs", queryset=standing, to_attr="standing"))
        .order_by("window_start", "pk")
    )
    policies = environment_policies_current() if changes else {}
    questions = gate_questions_for_changes(changes, now=now)
    items = []
    for change in changes:
        answer = gate_judge(questions[change.pk])
        judged = [*answer.reasons, *answer.warnings]
        items.append(
            CabItem(
                change_request=change,
                answer=answer,
                signatures=_signatures(change, policies.get(change.environment_id)),
                conflicts=[reason for reason in judged if reason.code in CONFLICT_CODES],
                blockers=[
                    reason
                    for reason in answer.reasons
                    if reason.code not in CONFLICT_CODES and reason.code not in SIGNATURE_CODES
                ],
            )
        )
    windows = {
        model: list(
            model.objects.filter(
                environment__is_production=True,
                cancelled_at__isnull=True,
                ends_at__gt=start,
                starts_at__lt=end,
            )
            .select_related("environment")
            .order_by("starts_at", "pk")
        )
        for model in (FreezeWindow, MaintenanceWindow)
    }
    return CabAgenda(
        start=start,
        end=end,
        items=items,
        freezes=windows[FreezeWindow],
        maintenance=windows[MaintenanceWindow],
    )
