"""Model risk (issue 16): each model's inventory entry, and the independent validations that
Model Risk concludes with an electronic signature and the gate then enforces.

A validator belongs to Model Risk, is not a member of the model's owner team and did not author
the commits the validation covers (read from the repository's mirror: without a readable mirror
nobody validates, rather than guess). A validation stays valid for a time that follows the
model's tier (`GATEHOUSE_VALIDATION_MONTHS`). Every change here is audited in its transaction."""

import calendar
import hashlib
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

from audit.actions import AuditAction
from audit.services import audit_record
from organisation.reauthentication import password_confirms
from portal.authentication import is_service_account
from portal.exceptions import RuleDenied
from portal.models import Membership
from portal.notifications import notify
from registry import git
from registry.models import (
    Document,
    DocumentKind,
    Finding,
    FindingSeverity,
    FindingStatus,
    LifecycleStatus,
    ModelVersion,
    RegisteredModel,
    Validation,
    ValidationOutcome,
)

INVENTORY_FIELDS = (
    "purpose",
    "intended_use",
    "prohibited_uses",
    "business_owner",
    "risk_tier",
    "tier_rationale",
    "ai_act_high_risk",
    "regulatory_rationale",
    "upstream_datasets",
    "lifecycle_status",
    "next_validation_due",
)


def _in_team(user: Any, slug: str) -> bool:
    return Membership.objects.filter(user=user, team__slug=slug).exists()


def is_model_risk(user: Any) -> bool:
    return not is_service_account(user) and _in_team(user, settings.GATEHOUSE_MODEL_RISK_TEAM)


def inventory_denial(user: Any, model: RegisteredModel) -> RuleDenied | None:
    """Who writes a model's inventory entry: its owner team, Model Risk, an administrator."""
    if is_service_account(user) or user is None or not user.is_authenticated:
        return RuleDenied("People keep the model inventory, not tokens.", code="people_only")
    if user.is_staff or is_model_risk(user):
        return None
    if Membership.objects.filter(user=user, team_id=model.owner_team_id).exists():
        return None
    return RuleDenied(
        f"Only {model.owner_team.name}, Model Risk or an administrator edit {model.name}'s "
        "inventory entry.",
        code="not_inventory_editor",
    )


# What the model's owners may not set for themselves: how material it is and when it is next
# validated decide how long a validation lasts, so they are Model Risk's.
MODEL_RISK_FIELDS = ("risk_tier", "tier_rationale", "next_validation_due", "model_risk_owner")


def _inventory_field_denial(actor: Any, model: RegisteredModel, changes: dict) -> RuleDenied | None:
    if not (actor.is_staff or is_model_risk(actor)):
        theirs = [name for name in MODEL_RISK_FIELDS if name in changes]
        if theirs:
            return RuleDenied(
                f"Only Model Risk sets {', '.join(theirs)} of a model.", code="model_risk_field"
            )
    status = changes.get("lifecycle_status")
    if status == LifecycleStatus.RETIRED and model.lifecycle_status != LifecycleStatus.RETIRED:
        return RuleDenied(
            f"A model is retired by an approved retirement change, not here: file a change "
            f"for {model.name} that retires it.",
            code="retire_by_change",
        )
    if model.lifecycle_status == LifecycleStatus.RETIRED and status not in (
        None,
        LifecycleStatus.RETIRED,
    ):
        return RuleDenied(
            f"{model.name} was retired by an approved change; it is not brought back here.",
            code="model_retired",
        )
    return None


def _snapshot(model: RegisteredModel) -> dict[str, Any]:
    data = {name: getattr(model, name) for name in INVENTORY_FIELDS}
    data["model_risk_owner"] = model.model_risk_owner.username if model.model_risk_owner else None
    data["upstream_models"] = sorted(model.upstream_models.values_list("name", flat=True))
    data["next_validation_due"] = (
        model.next_validation_due.isoformat() if model.next_validation_due else None
    )
    return data


@transaction.atomic
def model_inventory_update(
    *, actor: Any, model: RegisteredModel, request: Any = None, **changes: Any
) -> RegisteredModel:
    """Change a model's inventory entry; `changes` names inventory fields, `model_risk_owner` (a
    username or None) and `upstream_models` (names). Unchanged values write nothing."""
    model = (
        RegisteredModel.objects.select_for_update().select_related("owner_team").get(pk=model.pk)
    )
    denied = inventory_denial(actor, model)
    if denied is not None:
        raise denied
    unknown = set(changes) - {*INVENTORY_FIELDS, "model_risk_owner", "upstream_models"}
    if unknown:
        raise ValidationError({name: "Not an inventory field." for name in sorted(unknown)})
    denied = _inventory_field_denial(actor, model, changes)
    if denied is not None:
        raise denied
    before = _snapshot(model)
    errors: dict[str, str] = {}
    for name in INVENTORY_FIELDS:
        if name in changes:
            setattr(model, name, changes[name])
    if "model_risk_owner" in changes:
        username = changes["model_risk_owner"]
        owner = get_user_model().objects.filter(username=username).first() if username else None
        if username and owner is None:
            errors["model_risk_owner"] = f"No user is called '{username}'."
        model.model_risk_owner = owner
    upstream = None
    if "upstream_models" in changes:
        names = sorted(set(changes["upstream_models"]))
        upstream = list(RegisteredModel.objects.filter(name__in=names))
        missing = sorted(set(names) - {m.name for m in upstream})
        if missing:
            errors["upstream_models"] = f"No model is called {', '.join(missing)}."
        if model.name in names:
            errors["upstream_models"] = "A model does not depend on itself."
    datasets = model.upstream_datasets
    if not isinstance(datasets, list) or not all(isinstance(d, str) for d in datasets):
        errors["upstream_datasets"] = "A list of dataset names."
    if errors:
        raise ValidationError(errors)
    model.full_clean(exclude=["upstream_models"])
    model.save()
    if upstream is not None:
        model.upstream_models.set(upstream)
    after = _snapshot(model)
    changed = {name: {"before": before[name], "after": after[name]} for name in after}
    changed = {
        name: values for name, values in changed.items() if values["before"] != values["after"]
    }
    if changed:
        audit_record(
            actor=actor,
            action=AuditAction.MODEL_INVENTORY_UPDATED,
            target=model,
            data={"changes": changed},
            request=request,
        )
    return model


@transaction.atomic
def model_retire(
    *, actor: Any, model: RegisteredModel, change_request: str, request: Any = None
) -> RegisteredModel:
    """Retire a model because a retirement change (`change_request`, its number) was
    approved: the approval is the authority, whoever gave its last signature."""
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    if model.lifecycle_status == LifecycleStatus.RETIRED:
        return model
    before = model.lifecycle_status
    model.lifecycle_status = LifecycleStatus.RETIRED
    model.save(update_fields=["lifecycle_status"])
    audit_record(
        actor=actor,
        action=AuditAction.MODEL_RETIRED,
        target=model,
        data={"change_request": change_request, "lifecycle_status_before": before},
        request=request,
    )
    return model


def add_months(moment: datetime, months: int) -> datetime:
    """The same day `months` later (the month's last day when it has fewer)."""
    year, month = divmod(moment.month - 1 + months, 12)
    year, month = moment.year + year, month + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _validator_denial(
    actor: Any, model: RegisteredModel, versions: list[ModelVersion]
) -> RuleDenied | None:
    """Rule: a validation is independent of what it validates."""
    if not is_model_risk(actor):
        return RuleDenied(
            "Only a member of Model Risk concludes a validation.", code="not_model_risk"
        )
    if Membership.objects.filter(user=actor, team_id=model.owner_team_id).exists():
        return RuleDenied(
            f"You are a member of {model.owner_team.name}, which owns {model.name}: its "
            "validation must be independent.",
            code="validator_not_independent",
        )
    email = (actor.email or "").strip().lower()
    for version in versions:
        info = git.commit_info(version.repository, version.commit_sha)
        if info is None:
            return RuleDenied(
                f"The commit of {model.name} {version.version} cannot be read from the "
                "repository's mirror, so the validator's independence cannot be checked; an "
                "administrator configures the mirror (docs/deploy.md).",
                code="commits_unknown",
            )
        if email and info.author_email.strip().lower() == email:
            return RuleDenied(
                f"You authored the commit of {model.name} {version.version}: its validation "
                "must be independent.",
                code="validator_authored_commit",
            )
    return None


@transaction.atomic
def validation_conclude(
    *,
    actor: Any,
    model: RegisteredModel,
    versions: Iterable[ModelVersion],
    scope: str,
    outcome: str,
    password: str,
    findings: Iterable[dict] = (),
    report: tuple[str, bytes] | None = None,
    request: Any = None,
    now: datetime | None = None,
) -> Validation:
    """Conclude a validation of `model` covering `versions`, as an electronic signature: the
    validator re-enters their password and the meaning is stored and audited. Each finding is
    `{title, severity, owner (a user), remediation_due (a date)}`."""
    model = (
        RegisteredModel.objects.select_for_update().select_related("owner_team").get(pk=model.pk)
    )
    versions = sorted(versions, key=lambda version: version.pk)
    errors: dict[str, str] = {}
    if not versions or any(version.model_id != model.pk for version in versions):
        errors["versions"] = f"Name one or more versions of {model.name}."
    if not scope.strip():
        errors["scope"] = "Say what the validation covered."
    if outcome not in ValidationOutcome.values:
        errors["outcome"] = f"One of {', '.join(ValidationOutcome.values)}."
    findings = list(findings)
    for number, finding in enumerate(findings, start=1):
        if not str(finding.get("title", "")).strip():
            errors[f"findings.{number}.title"] = "A finding needs a title."
        if finding.get("severity") not in FindingSeverity.values:
            errors[f"findings.{number}.severity"] = "high, medium or low."
        if not isinstance(finding.get("remediation_due"), date):
            errors[f"findings.{number}.remediation_due"] = "A date."
    if errors:
        raise ValidationError(errors)
    denied = _validator_denial(actor, model, versions)
    if denied is not None:
        raise denied
    if not password_confirms(actor, password):
        raise RuleDenied("The password does not match: nothing was signed.", code="reauth_failed")
    now = now or timezone.now()
    months = settings.GATEHOUSE_VALIDATION_MONTHS[model.risk_tier]
    listed = ", ".join(version.version for version in versions)
    meaning = (
        f"I conclude the validation of {model.name} {listed} as "
        f"{ValidationOutcome(outcome).label.lower()} for Model Risk"
    )
    validation = Validation.objects.create(
        model=model,
        validator=actor,
        scope=scope.strip(),
        outcome=outcome,
        meaning=meaning,
        reauthenticated=True,
        concluded_at=now,
        valid_until=add_months(now, months),
    )
    validation.covers.set(versions)
    created = [
        Finding.objects.create(
            validation=validation,
            title=str(finding["title"]).strip(),
            severity=finding["severity"],
            owner=finding["owner"],
            remediation_due=finding["remediation_due"],
        )
        for finding in findings
    ]
    document = None
    if report is not None:
        document = document_attach(
            actor=actor,
            name=report[0],
            content=report[1],
            kind=DocumentKind.VALIDATION_REPORT,
            validation=validation,
        )
    model.next_validation_due = validation.valid_until.date()
    if outcome != ValidationOutcome.REJECTED and model.lifecycle_status in (
        LifecycleStatus.IN_DEVELOPMENT,
        LifecycleStatus.IN_VALIDATION,
    ):
        model.lifecycle_status = LifecycleStatus.APPROVED
    model.save(update_fields=["next_validation_due", "lifecycle_status"])
    audit_record(
        actor=actor,
        action=AuditAction.VALIDATION_CONCLUDED,
        target=model,
        data={
            "validation": validation.pk,
            "versions": [version.version for version in versions],
            "scope": validation.scope,
            "outcome": outcome,
            "meaning": meaning,
            "reauthenticated": True,
            "valid_until": validation.valid_until,
            "report": {"name": document.name, "sha256": document.sha256} if document else None,
            "findings": [
                {
                    "id": finding.pk,
                    "title": finding.title,
                    "severity": finding.severity,
                    "owner": finding.owner.username,
                    "remediation_due": finding.remediation_due.isoformat(),
                }
                for finding in created
            ],
        },
        request=request,
    )
    return validation


@transaction.atomic
def finding_close(
    *, actor: Any, finding: Finding, status: str, note: str, request: Any = None
) -> Finding:
    """A finding is remediated (its owner or Model Risk says so) or accepted (Model Risk only,
    with a note): either way it stops blocking the gate, and the trail says who and why."""
    finding = (
        Finding.objects.select_for_update().select_related("validation__model").get(pk=finding.pk)
    )
    if status not in (FindingStatus.REMEDIATED, FindingStatus.ACCEPTED):
        raise ValidationError({"status": "remediated or accepted."})
    if not note.strip():
        raise ValidationError({"note": "Say what was done, or why the risk is accepted."})
    if finding.status != FindingStatus.OPEN:
        raise RuleDenied(f"This finding is {finding.status} already.", code="finding_closed")
    allowed = is_model_risk(actor) or (
        status == FindingStatus.REMEDIATED and finding.owner_id == getattr(actor, "pk", None)
    )
    if not allowed:
        raise RuleDenied(
            "Model Risk accepts a finding; its owner or Model Risk marks it remediated.",
            code="not_allowed_to_close_finding",
        )
    finding.status, finding.closed_by, finding.closed_at = status, actor, timezone.now()
    finding.save(update_fields=["status", "closed_by", "closed_at"])
    audit_record(
        actor=actor,
        action=AuditAction.FINDING_CLOSED,
        target=finding.validation.model,
        data={"finding": finding.pk, "title": finding.title, "status": status, "note": note},
        request=request,
    )
    return finding


# Days before a model's next validation date when its model risk owner is told.
REMINDER_DAYS = (60, 30)


def validations_due(*, today: date) -> list[RegisteredModel]:
    """Models still in use whose next validation falls within the first reminder, soonest
    first: the Model Risk dashboard panel and the reminders read the same list."""
    horizon = today + timedelta(days=REMINDER_DAYS[0])
    return list(
        RegisteredModel.objects.exclude(lifecycle_status=LifecycleStatus.RETIRED)
        .filter(next_validation_due__lte=horizon)
        .select_related("owner_team", "model_risk_owner")
        .order_by("next_validation_due", "name")
    )


def validation_reminders_send(*, today: date) -> int:
    """Tell each model's risk owner 60 and 30 days before its validation is due, and Model
    Risk's approvers once it has lapsed (the escalation). Once per model, date and step, so the
    daily job may run as often as it likes. Returns how many were told."""
    told = 0
    model_risk_approvers = get_user_model().objects.filter(
        memberships__team__slug=settings.GATEHOUSE_MODEL_RISK_TEAM,
        memberships__is_approver=True,
        is_active=True,
    )
    for model in validations_due(today=today):
        due, days = model.next_validation_due, (model.next_validation_due - today).days
        link = f"/registry/models/{model.name}/"
        if days < 0:
            told += len(
                notify(
                    recipients=[*model_risk_approvers, *filter(None, [model.model_risk_owner])],
                    key=f"validation:{model.pk}:{due.isoformat()}:lapsed",
                    subject=f"{model.name}: its validation lapsed on {due.isoformat()}",
                    body=f"{model.name} (tier {model.risk_tier}) was due for validation on "
                    f"{due.isoformat()}. Where the policy requires "
                    "validation, the gate refuses its builds once their validation expires.",
                    reason="You approve for Model Risk, or you own this model's risk.",
                    link=link,
                )
            )
            continue
        step = next((limit for limit in reversed(REMINDER_DAYS) if days <= limit), None)
        if step is None or model.model_risk_owner is None:
            continue
        told += len(
            notify(
                recipients=[model.model_risk_owner],
                key=f"validation:{model.pk}:{due.isoformat()}:{step}",
                subject=f"{model.name}: validation due in {days} days ({due.isoformat()})",
                body=f"The next validation of {model.name} is due on {due.isoformat()}.",
                reason="You own this model's risk.",
                link=link,
            )
        )
    return told


def validations_due_panel(*, user: Any) -> dict[str, Any] | None:
    """The "validation due" panel, for members of Model Risk with anything due."""
    if not is_model_risk(user):
        return None
    today = timezone.localdate()
    due = validations_due(today=today)
    if not due:
        return None
    return {"due": [(model, (model.next_validation_due - today).days) for model in due]}


# What a document may be: its extension, the type it is served as, and how its bytes begin.
DOCUMENT_TYPES = {
    ".pdf": ("application/pdf", b"%PDF-"),
    ".md": ("text/markdown; charset=utf-8", None),
    ".txt": ("text/plain; charset=utf-8", None),
    ".json": ("application/json", None),
}


def _document_problem(name: str, content: bytes) -> str:
    extension = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension not in DOCUMENT_TYPES:
        return f"Attach a PDF, Markdown, text or JSON file, not '{extension or name}'."
    if len(content) > settings.GATEHOUSE_DOCUMENT_MAX_BYTES:
        return f"The file is over the limit of {settings.GATEHOUSE_DOCUMENT_MAX_BYTES:,} bytes."
    _, magic = DOCUMENT_TYPES[extension]
    if magic is not None and not content.startswith(magic):
        return "The file's contents are not a PDF."
    if magic is None:
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            return "A text document must be UTF-8."
        if "\x00" in text:
            return "A text document holds no NUL bytes."
    return ""


def document_attach(
    *, actor: Any, name: str, content: bytes, kind: str, validation: Validation | None = None
) -> Document:
    """Keep `content` under its sha256 (never overwriting) and record it; in the caller's
    transaction, which writes the audit event of what it is attached to."""
    problem = _document_problem(name, content)
    if problem:
        raise ValidationError({"document": problem})
    digest = hashlib.sha256(content).hexdigest()
    safe = get_valid_filename(name.rsplit("/", 1)[-1])[:100] or "document"
    path = f"documents/{digest}/{safe}"
    if not default_storage.exists(path):
        path = default_storage.save(path, ContentFile(content))
    extension = "." + safe.rsplit(".", 1)[-1].lower()
    return Document.objects.create(
        kind=kind,
        name=safe,
        file=path,
        sha256=digest,
        size=len(content),
        content_type=DOCUMENT_TYPES[extension][0],
        validation=validation,
        uploaded_by=actor,
    )


def document_read(document: Document) -> bytes:
    """The document's bytes, only when they still hash to the recorded digest."""
    with default_storage.open(document.file.name, "rb") as handle:
        content = handle.read()
    if hashlib.sha256(content).hexdigest() != document.sha256:
        raise RuleDenied(
            f"The stored {document.name} no longer matches the digest recorded when it was "
            "attached; it is not handed out. An administrator restores it from backup.",
            code="document_altered",
        )
    return content
