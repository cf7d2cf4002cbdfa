"""Model risk (issue 16): each model's inventory entry, and the independent validations that
Model Risk opens (its people, or its tokens over the API), records findings in, and whose named
validator concludes with an electronic signature in the browser; the gate then enforces them.

A validator belongs to Model Risk, is not a member of the model's owner team and did not author
the commits the validation covers (read from the repository's mirror: without a readable mirror
nobody validates, rather than guess). A validation stays valid for a time that follows the
model's tier (`GATEHOUSE_VALIDATION_MONTHS`). Every change here is audited in its transaction."""

import calendar
import hashlib
import secrets
from collections.abc import Iterable, Mapping
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
from organisation.services import memberships_follow_groups
from organisation.step_up import (
    PendingSignature,
    ProviderReauthentication,
    pending_signature_take,
    provider_reauthentication,
    step_up_replayed,
)
from portal.authentication import is_service_account
from portal.exceptions import Conflict, RuleDenied
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
    ValidationStepUp,
)
from registry.permissions import token_model_risk_denial

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
        return RuleDenied(
            "People keep the model inventory, not tokens: edit it on the model's page.",
            code="people_only",
        )
    if user.is_staff or is_model_risk(user):
        return None
    if Membership.objects.filter(user=user, team_id=model.owner_team_id).exists():
        return None
    return RuleDenied(
        f"Only {model.owner_team.name}, Model Risk or an administrator edit {model.name}'s "
        "inventory entry: ask one of them.",
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
                f"Only Model Risk sets {', '.join(theirs)} of a model: ask Model Risk to set it.",
                code="model_risk_field",
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
            f"{model.name} was retired by an approved change; it is not brought back here. "
            "Register a successor as a new model.",
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
    validator: Any, model: RegisteredModel, versions: list[ModelVersion], *, actor: Any
) -> RuleDenied | None:
    """Rule: a validation is independent of what it validates. Asked when it is opened for
    `validator` and again when they sign it."""
    you = validator == actor
    who = "You" if you else validator.get_full_name() or validator.username
    if not is_model_risk(validator):
        return RuleDenied(
            "Only a member of Model Risk validates a model"
            + (": ask Model Risk." if you else f"; {who} is not one. Name a member of Model Risk."),
            code="not_model_risk",
        )
    if Membership.objects.filter(user=validator, team_id=model.owner_team_id).exists():
        return RuleDenied(
            f"{who} {'are' if you else 'is'} a member of {model.owner_team.name}, which owns "
            f"{model.name}: its validation must be independent. Name a validator of Model "
            "Risk outside that team.",
            code="validator_not_independent",
        )
    email = (validator.email or "").strip().lower()
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
                f"{who} authored the commit of {model.name} {version.version}: its validation "
                "must be independent. Name another validator of Model Risk.",
                code="validator_authored_commit",
            )
    return None


def model_risk_work_denial(actor: Any, model: RegisteredModel) -> RuleDenied | None:
    """Who opens a validation of `model` and records its findings: a member of Model Risk who is
    not in the model's owner team, or a token that acts for Model Risk and not for the owners
    (`registry.permissions.token_model_risk_denial`)."""
    if is_service_account(actor):
        return token_model_risk_denial(actor, model=model)
    if actor is None or not actor.is_authenticated or not is_model_risk(actor):
        return RuleDenied(
            "Only Model Risk opens validations and records their findings: ask Model Risk.",
            code="not_model_risk",
        )
    if Membership.objects.filter(user=actor, team_id=model.owner_team_id).exists():
        return RuleDenied(
            f"You are a member of {model.owner_team.name}, which owns {model.name}: its "
            "validation must be independent. Another member of Model Risk opens it.",
            code="validator_not_independent",
        )
    return None


def _finding_errors(finding: dict, prefix: str = "") -> dict[str, str]:
    errors = {}
    if not str(finding.get("title", "")).strip():
        errors[f"{prefix}title"] = "A finding needs a title."
    if finding.get("severity") not in FindingSeverity.values:
        errors[f"{prefix}severity"] = "high, medium or low."
    if not isinstance(finding.get("remediation_due"), date):
        errors[f"{prefix}remediation_due"] = "A date."
    return errors


def _active_user(username: str) -> Any:
    return get_user_model().objects.filter(username=username, is_active=True).first()


@transaction.atomic
def validation_open(
    *,
    actor: Any,
    model: RegisteredModel,
    versions: Iterable[str],
    scope: str,
    validator: str,
    request: Any = None,
) -> Validation:
    """Open a validation of `model` covering the versions named, for `validator` (a username)
    to conclude: Model Risk's people and tokens open one, the validator alone signs it, in the
    browser. The validator's independence is checked now and again at the signature."""
    model = (
        RegisteredModel.objects.select_for_update().select_related("owner_team").get(pk=model.pk)
    )
    denied = model_risk_work_denial(actor, model)
    if denied is not None:
        raise denied
    names = sorted(set(versions))
    found = list(model.versions.filter(version__in=names).select_related("repository"))
    errors: dict[str, str] = {}
    missing = sorted(set(names) - {version.version for version in found})
    if not names or missing:
        errors["versions"] = (
            f"{model.name} has no version {', '.join(missing)}."
            if missing
            else f"Name one or more versions of {model.name}."
        )
    if not scope.strip():
        errors["scope"] = "Say what the validation covers."
    person = _active_user(validator)
    if person is None:
        errors["validator"] = f"No active user is called '{validator}'."
    if errors:
        raise ValidationError(errors)
    found.sort(key=lambda version: version.pk)
    denied = _validator_denial(person, model, found, actor=actor)
    if denied is not None:
        raise denied
    validation = Validation.objects.create(model=model, validator=person, scope=scope.strip())
    validation.covers.set(found)
    before = model.lifecycle_status
    if before == LifecycleStatus.IN_DEVELOPMENT:
        model.lifecycle_status = LifecycleStatus.IN_VALIDATION
        model.save(update_fields=["lifecycle_status"])
    listed = ", ".join(version.version for version in found)
    notify(
        recipients=[person],
        key=f"validation:{validation.pk}:opened",
        subject=f"{model.name} {listed}: a validation for you to conclude",
        body=f"Model Risk opened a validation of {model.name} {listed} and named you its "
        f"validator. Scope: {validation.scope}",
        reason="You are its validator.",
        link=f"/registry/models/{model.name}/",
    )
    audit_record(
        actor=actor,
        action=AuditAction.VALIDATION_OPENED,
        target=model,
        data={
            "validation": validation.pk,
            "versions": [version.version for version in found],
            "scope": validation.scope,
            "validator": person.username,
            "lifecycle_status": {"before": before, "after": model.lifecycle_status},
        },
        request=request,
    )
    return validation


@transaction.atomic
def finding_record(
    *,
    actor: Any,
    validation: Validation,
    title: str,
    severity: str,
    owner: str,
    remediation_due: date,
    request: Any = None,
) -> Finding:
    """Record a finding of an open validation, owned by `owner` (a username). Once concluded,
    a validation is what its validator signed: its findings no longer change."""
    validation = (
        Validation.objects.select_for_update()
        .select_related("model__owner_team")
        .get(pk=validation.pk)
    )
    model = validation.model
    denied = model_risk_work_denial(actor, model)
    if denied is not None:
        raise denied
    if not validation.is_open:
        raise Conflict(
            f"This validation of {model.name} was concluded and signed; record the finding in "
            "a new validation.",
            code="validation_concluded",
        )
    errors = _finding_errors(
        {"title": title, "severity": severity, "remediation_due": remediation_due}
    )
    person = _active_user(owner)
    if person is None:
        errors["owner"] = f"No active user is called '{owner}'."
    if errors:
        raise ValidationError(errors)
    finding = Finding.objects.create(
        validation=validation,
        title=title.strip(),
        severity=severity,
        owner=person,
        remediation_due=remediation_due,
    )
    notify(
        recipients=[person],
        key=f"finding:{finding.pk}:recorded",
        subject=f"{model.name}: a {severity} finding for you, due {remediation_due.isoformat()}",
        body=f"Model Risk's validation of {model.name} found: {finding.title}. Remediate it by "
        f"{remediation_due.isoformat()}.",
        reason="You own this finding.",
        link=f"/registry/models/{model.name}/",
    )
    audit_record(
        actor=actor,
        action=AuditAction.FINDING_RECORDED,
        target=model,
        data={
            "validation": validation.pk,
            "finding": finding.pk,
            "title": finding.title,
            "severity": severity,
            "owner": person.username,
            "remediation_due": remediation_due.isoformat(),
        },
        request=request,
    )
    return finding


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
    """Open and conclude a validation of `model` covering `versions` in one step, from the model
    page: the validator is the actor. Each finding is `{title, severity, owner (a user),
    remediation_due (a date)}`."""
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
        errors.update(_finding_errors(finding, prefix=f"findings.{number}."))
    if errors:
        raise ValidationError(errors)
    denied = _validator_denial(actor, model, versions, actor=actor)
    if denied is not None:
        raise denied
    _password_confirmed(actor, password)
    now = now or timezone.now()
    validation = Validation.objects.create(
        model=model, validator=actor, scope=scope.strip(), opened_at=now
    )
    validation.covers.set(versions)
    for finding in findings:
        Finding.objects.create(
            validation=validation,
            title=str(finding["title"]).strip(),
            severity=finding["severity"],
            owner=finding["owner"],
            remediation_due=finding["remediation_due"],
        )
    return _sign(
        actor=actor,
        validation=validation,
        outcome=outcome,
        report=report,
        at_provider=None,
        request=request,
        now=now,
    )


def _conclusion_checked(*, actor: Any, validation: Validation, outcome: str) -> Validation:
    """The rules of concluding an opened validation, whatever confirms the signature: it is
    still open, the actor is its named validator, the outcome is one of ours, and the validator
    is still independent of what it covers. The validation, locked."""
    validation = (
        Validation.objects.select_for_update()
        .select_related("model__owner_team", "validator")
        .get(pk=validation.pk)
    )
    model = validation.model
    if not validation.is_open:
        raise Conflict(
            f"This validation of {model.name} is concluded already; a new one is opened to "
            "validate again.",
            code="validation_concluded",
        )
    if is_service_account(actor) or actor != validation.validator:
        name = validation.validator.get_full_name() or validation.validator.username
        raise RuleDenied(
            f"{name} was named the validator of this validation; only they conclude it: ask them.",
            code="not_the_validator",
        )
    if outcome not in ValidationOutcome.values:
        raise ValidationError({"outcome": f"One of {', '.join(ValidationOutcome.values)}."})
    versions = list(validation.covers.select_related("repository").order_by("pk"))
    denied = _validator_denial(actor, model, versions, actor=actor)
    if denied is not None:
        raise denied
    return validation


@transaction.atomic
def validation_conclude_opened(
    *,
    actor: Any,
    validation: Validation,
    outcome: str,
    password: str,
    report: tuple[str, bytes] | None = None,
    request: Any = None,
    now: datetime | None = None,
) -> Validation:
    """The validator named when the validation was opened concludes it, with the findings
    recorded while it was open, as an electronic signature; independence is checked again."""
    validation = _conclusion_checked(actor=actor, validation=validation, outcome=outcome)
    _password_confirmed(actor, password)
    return _sign(
        actor=actor,
        validation=validation,
        outcome=outcome,
        report=report,
        at_provider=None,
        request=request,
        now=now or timezone.now(),
    )


@transaction.atomic
def validation_step_up_begin(
    *,
    actor: Any,
    validation: Validation,
    outcome: str,
    report: tuple[str, bytes] | None = None,
    now: datetime | None = None,
) -> ValidationStepUp:
    """Rule 6 for validators who sign in at the identity provider: the conclusion chosen on the
    form waits here, under a fresh state, nonce and PKCE verifier, while they sign in there
    again (`organisation.oidc.step_up_url`). What can be refused already is, so nobody is sent
    away for nothing; everything is checked again when they come back. Nothing is signed yet,
    so nothing is audited yet."""
    validation = _conclusion_checked(actor=actor, validation=validation, outcome=outcome)
    problem = _document_problem(*report) if report is not None else ""
    if problem:
        raise ValidationError({"document": problem})
    step_up = ValidationStepUp(
        validation=validation,
        signer=actor,
        outcome=outcome,
        report_name=report[0] if report else "",
        report=report[1] if report else b"",
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        code_verifier=secrets.token_urlsafe(64),
        issued_at=now or timezone.now(),
    )
    step_up.full_clean()
    step_up.save()
    return step_up


@transaction.atomic
def validation_step_up_begin_new(
    *,
    actor: Any,
    model: RegisteredModel,
    versions: Iterable[ModelVersion],
    scope: str,
    outcome: str,
    findings: Iterable[dict] = (),
    report: tuple[str, bytes] | None = None,
    request: Any = None,
    now: datetime | None = None,
) -> ValidationStepUp:
    """`validation_conclude` for a validator who signs at the identity provider: what the
    password route does at once is split at the provider's round trip. The validation is
    opened naming the actor, with its findings, as Model Risk opens one (audited, every rule of
    `validation_open` and `finding_record`), and its conclusion waits at the provider
    (`validation_step_up_begin`). Should they not come back, it stays open on the model page
    for them to sign."""
    validation = validation_open(
        actor=actor,
        model=model,
        versions=[version.version for version in versions if version.model_id == model.pk],
        scope=scope,
        validator=actor.get_username(),
        request=request,
    )
    for finding in findings:
        finding_record(
            actor=actor,
            validation=validation,
            title=str(finding["title"]),
            severity=finding["severity"],
            owner=finding["owner"].get_username(),
            remediation_due=finding["remediation_due"],
            request=request,
        )
    return validation_step_up_begin(
        actor=actor, validation=validation, outcome=outcome, report=report, now=now
    )


@transaction.atomic
def _step_up_refusal_record(*, actor: Any, step_up: ValidationStepUp, code: str, request) -> None:
    ValidationStepUp.objects.filter(pk=step_up.pk).update(refusal=code)
    audit_record(
        actor=actor,
        action=AuditAction.VALIDATION_STEP_UP_REFUSED,
        target=step_up.validation.model,
        data={"validation": step_up.validation_id, "code": code, "issued_at": step_up.issued_at},
        request=request,
    )


@transaction.atomic
def _step_up_take(*, actor: Any, state: str, now: datetime) -> ValidationStepUp:
    return pending_signature_take(
        ValidationStepUp.objects.select_related("validation__model"),
        actor=actor,
        state=state,
        now=now,
        unknown="No validation of yours waits for this answer of the identity provider: start "
        "signing again from the model's page.",
    )


def validation_step_up_take(
    *, actor: Any, state: str, request: Any = None, now: datetime | None = None
) -> ValidationStepUp:
    """The pending conclusion the provider's answer names by its `state`, taken once and before
    the provider is asked anything more: the same answer arriving again (a replayed callback)
    is refused and recorded. Only its validator may take it."""
    try:
        return _step_up_take(actor=actor, state=state, now=now or timezone.now())
    except Conflict as error:
        step_up = ValidationStepUp.objects.select_related("validation__model").get(state=state)
        _step_up_refusal_record(actor=actor, step_up=step_up, code=error.code, request=request)
        raise


def _pending(step_up: ValidationStepUp) -> PendingSignature:
    return PendingSignature(
        signer_id=step_up.signer_id,
        nonce=step_up.nonce,
        issued_at=step_up.issued_at,
        taken=step_up.taken_at is not None,
        used=step_up.concluded_at is not None or bool(step_up.refusal),
    )


@transaction.atomic
def _conclude_at_provider(
    *,
    actor: Any,
    step_up: ValidationStepUp,
    confirmation: ProviderReauthentication,
    request: Any,
    now: datetime,
) -> Validation:
    step_up = ValidationStepUp.objects.select_for_update().get(pk=step_up.pk)
    if step_up.concluded_at is not None or step_up.refusal:
        raise step_up_replayed()
    validation = _conclusion_checked(
        actor=actor, validation=step_up.validation, outcome=step_up.outcome
    )
    signed = _sign(
        actor=actor,
        validation=validation,
        outcome=step_up.outcome,
        report=(step_up.report_name, bytes(step_up.report)) if step_up.report_name else None,
        at_provider=confirmation,
        request=request,
        now=now,
    )
    step_up.concluded_at = now
    step_up.save(update_fields=["concluded_at"])
    return signed


def validation_conclude_at_provider(
    *,
    actor: Any,
    step_up: ValidationStepUp,
    claims: Mapping,
    groups: list[str] | None = None,
    request: Any = None,
    now: datetime | None = None,
) -> Validation:
    """Rule 6 for single sign-on: conclude the validation `step_up` waited for, once the
    identity provider confirmed its validator. `claims` are the ID token's, already checked
    (`organisation.oidc.step_up_answer`); whether they confirm this conclusion is the rule of
    every signature at the provider (`organisation.step_up`). The validator's team roles
    follow the provider's `groups` first, as at sign-in; then every rule of
    `validation_conclude_opened` applies, and `auth_time` and `acr` go into the event. A
    refusal is recorded and uses the pending conclusion up."""
    now = now or timezone.now()
    step_up = ValidationStepUp.objects.select_related("validation__model").get(pk=step_up.pk)
    try:
        confirmation = provider_reauthentication(
            actor=actor, pending=_pending(step_up), claims=claims, now=now
        )
        mapping = getattr(settings, "GATEHOUSE_OIDC_TEAM_GROUPS", [])
        if groups is not None and mapping:
            memberships_follow_groups(user=actor, groups=groups, mapping=mapping)
        return _conclude_at_provider(
            actor=actor, step_up=step_up, confirmation=confirmation, request=request, now=now
        )
    except (RuleDenied, Conflict) as error:
        if error.code != "step_up_not_taken":
            _step_up_refusal_record(actor=actor, step_up=step_up, code=error.code, request=request)
        raise


def validation_conclusion_refused(validation: Validation) -> RuleDenied:
    """Why the REST API never concludes a validation: it is the validator's electronic
    signature, given in the browser with the password entered again (21 CFR Part 11), which
    the API never takes, like a change request's sign-off."""
    return RuleDenied(
        f"Concluding a validation is its validator's electronic signature: they sign it on "
        f"/registry/models/{validation.model.name}/ with their password, which the API never "
        "takes.",
        code="signature_in_browser",
    )


def _password_confirmed(actor: Any, password: str) -> None:
    if not password_confirms(actor, password):
        raise RuleDenied(
            "The password does not match: nothing was signed. Type your sign-in password again.",
            code="reauth_failed",
        )


def _sign(
    *,
    actor: Any,
    validation: Validation,
    outcome: str,
    report: tuple[str, bytes] | None,
    at_provider: ProviderReauthentication | None,
    request: Any,
    now: datetime,
) -> Validation:
    """Conclude `validation` (open, locked by the caller) as `outcome`: the signature's
    meaning, its validity by the model's tier, the report, the model's next validation date,
    and how the validator confirmed it (a password, or the provider's `at_provider`)."""
    model = validation.model
    versions = list(validation.covers.order_by("pk"))
    listed = ", ".join(version.version for version in versions)
    meaning = (
        f"I conclude the validation of {model.name} {listed} as "
        f"{ValidationOutcome(outcome).label.lower()} for Model Risk"
    )
    validation.outcome, validation.meaning, validation.reauthenticated = outcome, meaning, True
    validation.concluded_at = now
    validation.valid_until = add_months(now, settings.GATEHOUSE_VALIDATION_MONTHS[model.risk_tier])
    validation.save(
        update_fields=["outcome", "meaning", "reauthenticated", "concluded_at", "valid_until"]
    )
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
    findings = validation.findings.select_related("owner").order_by("pk")
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
            "reauthenticated_by": "identity_provider" if at_provider else "password",
            **({"auth_time": at_provider.auth_time, "acr": at_provider.acr} if at_provider else {}),
            "valid_until": validation.valid_until,
            "report": {"name": document.name, "sha256": document.sha256} if document else None,
            "findings": [
                {
                    "id": finding.pk,
                    "title": finding.title,
                    "severity": finding.severity,
                    "owner": finding.owner.username,
                    "remediation_due": finding.remediation_due.isoformat(),
                    "status": finding.status,
                }
                for finding in findings
            ],
        },
        request=request,
    )
    return validation


@transaction.atomic
def finding_close(
    *, actor: Any, finding: Finding, status: str, note: str, request: Any = None
) -> Finding:
    """A finding is remediated (its owner or Model Risk says so) or accepted (a person of Model
    Risk, with a note): either way it stops blocking the gate, and the trail says who and why.
    Model Risk here is independent of the model (`model_risk_work_denial`); its token may mark
    a finding remediated, but accepting a risk is a person's decision."""
    finding = (
        Finding.objects.select_for_update()
        .select_related("validation__model__owner_team")
        .get(pk=finding.pk)
    )
    if status not in (FindingStatus.REMEDIATED, FindingStatus.ACCEPTED):
        raise ValidationError({"status": "remediated or accepted."})
    if not note.strip():
        raise ValidationError({"note": "Say what was done, or why the risk is accepted."})
    if finding.status != FindingStatus.OPEN:
        raise RuleDenied(
            f"This finding is {finding.status} already; there is nothing more to do. A new "
            "problem is recorded as a new finding.",
            code="finding_closed",
        )
    model_risk_denied = model_risk_work_denial(actor, finding.validation.model)
    if is_service_account(actor):
        if model_risk_denied is not None:
            raise model_risk_denied
        if status == FindingStatus.ACCEPTED:
            raise RuleDenied(
                "Accepting a finding's risk is a decision a person of Model Risk takes and "
                "answers for; a token marks a finding remediated only.",
                code="people_only",
            )
    elif model_risk_denied is not None and not (
        status == FindingStatus.REMEDIATED and finding.owner_id == getattr(actor, "pk", None)
    ):
        raise RuleDenied(
            "Model Risk accepts a finding; its owner or Model Risk marks it remediated: ask "
            "one of them.",
            code="not_allowed_to_close_finding",
        )
    finding.status, finding.closed_at = status, timezone.now()
    finding.closed_by = None if is_service_account(actor) else actor
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
