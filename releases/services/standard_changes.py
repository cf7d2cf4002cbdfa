"""Standard change templates (issue 18, rule 18): filed with the change request that approves
them through the full path of the policy once, used by standard changes that need only a peer
review and the gate's rules, and revoked when they should serve no more."""

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record, describe_actor
from portal.exceptions import Conflict, RuleDenied
from registry.models import ModelVersion
from releases.models import ChangeRequest, Environment, StandardChangeTemplate
from releases.permissions import Action, refuse
from releases.services.change_requests import (
    change_request_create,
    change_request_submit,
    template_terms,
)
from releases.states import Kind, State


@transaction.atomic
def standard_template_file(
    *,
    actor: AbstractBaseUser,
    base_version: ModelVersion,
    environments: list[Environment],
    pipeline: str,
    allowed_paths: str,
    valid_until: datetime,
    max_uses: int,
    title: str,
    justification: str,
    rollback_plan: str,
    risk_impact: str = "",
    test_evidence: str = "",
    request=None,
    now: datetime | None = None,
) -> ChangeRequest:
    """File a template and submit the change request that approves it, of kind
    `standard_template`, for the highest of its environments: its signers approve the terms
    (in the content digest) through that policy's full path, once."""
    now = now or timezone.now()
    environments = sorted(environments, key=lambda environment: environment.rank)
    if not environments:
        raise ValidationError({"environments": ["Name at least one environment."]})
    if valid_until <= now:
        raise ValidationError({"valid_until": ["A template is valid until a future moment."]})
    template = StandardChangeTemplate(
        model=base_version.model,
        base_version=base_version,
        pipeline=pipeline.strip(),
        allowed_paths="\n".join(
            line.strip() for line in allowed_paths.splitlines() if line.strip()
        ),
        valid_until=valid_until,
        max_uses=max_uses,
        created_at=now,
        created_by_name=describe_actor(actor).name,
    )
    if not template.path_globs:
        raise ValidationError({"allowed_paths": ["Name the paths an instance may change."]})
    template.full_clean()
    template.save()
    template.environments.set(environments)
    audit_record(
        actor=actor,
        action=AuditAction.STANDARD_TEMPLATE_CREATED,
        target=template,
        environment=environments[-1],
        data=template_terms(template),
        request=request,
    )
    approval = change_request_create(
        actor=actor,
        kind=Kind.STANDARD_TEMPLATE,
        model_version=base_version,
        environment=environments[-1],
        title=title,
        justification=justification,
        rollback_plan=rollback_plan,
        risk_impact=risk_impact,
        test_evidence=test_evidence,
        standard_template=template,
        request=request,
        now=now,
    )
    return change_request_submit(actor=actor, change_request=approval, request=request, now=now)


@transaction.atomic
def standard_change_file(
    *,
    actor: AbstractBaseUser,
    template: StandardChangeTemplate,
    model_version: ModelVersion,
    environment: Environment,
    title: str,
    justification: str,
    rollback_plan: str,
    window_start: datetime,
    window_end: datetime,
    risk_impact: str = "",
    test_evidence: str = "",
    request=None,
    now: datetime | None = None,
) -> ChangeRequest:
    """File and submit a standard change under `template`: it goes to its peer reviewer alone.
    Whether it stays within the template is the gate's question (`not_within_template`), asked
    again at deployment; a template that is revoked or not approved is refused here at once."""
    template = StandardChangeTemplate.objects.select_for_update().get(pk=template.pk)
    if template.revoked_at is not None:
        raise Conflict(f"{template.number} is revoked.", code="not_within_template")
    if not template.change_requests.filter(
        kind=Kind.STANDARD_TEMPLATE, state=State.APPROVED
    ).exists():
        raise RuleDenied(
            f"{template.number} is not approved yet; its change request must be approved first.",
            code="not_within_template",
        )
    change_request = change_request_create(
        actor=actor,
        kind=Kind.STANDARD,
        model_version=model_version,
        environment=environment,
        title=title,
        justification=justification,
        rollback_plan=rollback_plan,
        risk_impact=risk_impact,
        test_evidence=test_evidence,
        window_start=window_start,
        window_end=window_end,
        standard_template=template,
        request=request,
        now=now,
    )
    return change_request_submit(
        actor=actor, change_request=change_request, request=request, now=now
    )


@transaction.atomic
def standard_template_revoke(
    *,
    actor: AbstractBaseUser,
    template: StandardChangeTemplate,
    reason: str,
    request=None,
    now: datetime | None = None,
) -> StandardChangeTemplate:
    """No further use: from now on the gate refuses every instance not yet deployed
    (`not_within_template`). The template and its history stay."""
    template = StandardChangeTemplate.objects.select_for_update().get(pk=template.pk)
    refuse(actor, Action.REVOKE_STANDARD_TEMPLATE, template)
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": ["Say why the template is revoked."]})
    if template.revoked_at is not None:
        raise Conflict(f"{template.number} is revoked already.", code="template_revoked")
    template.revoked_at = now or timezone.now()
    template.revoked_by_name = describe_actor(actor).name
    template.revoke_reason = reason
    template.full_clean()
    template.save()
    audit_record(
        actor=actor,
        action=AuditAction.STANDARD_TEMPLATE_REVOKED,
        target=template,
        environment=None,
        data={"reason": reason, "revoked_at": template.revoked_at},
        request=request,
    )
    return template
