"""The environment pages: what runs where, who put it there and who signed it, now or at any
past moment; rollback and the review of unauthorised changes for those allowed. Thin: the
selectors read, the services decide, `releases.permissions` says whose buttons show."""

from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from portal.exceptions import BadRequest, DomainError
from portal.moments import moment_from_query
from registry.models import RegisteredModel
from releases.models import Deployment, Environment, UnauthorisedChange
from releases.permissions import (
    Action,
    is_environment_approver,
    may,
    may_review_unauthorised_change,
)
from releases.selectors import live as selectors
from releases.selectors.change_requests import retrospective_overdue
from releases.selectors.enforcement import gate_enforcement
from releases.selectors.policy import environment_policy_current
from releases.selectors.rollback import rollback_options
from releases.selectors.runtime import ledger_and_runtime
from releases.services import deployments as services


@dataclass
class LiveRow:
    deployment: Deployment
    signers: list
    health: object
    flags: list
    can_roll_back: bool


def _named(model, name: str):
    """The row named so in the URL; a name no row could have (a NUL byte) is simply not found."""
    if "\x00" in name:
        raise Http404
    return get_object_or_404(model, name=name)


@require_GET
def environment_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "releases/environment_list.html",
        {"environments": selectors.environments_overview(now=timezone.now())},
    )


@require_GET
def environment_detail(request: HttpRequest, name: str) -> HttpResponse:
    return _environment_page(request, _named(Environment, name))


def _environment_page(
    request: HttpRequest, environment: Environment, status: int = 200
) -> HttpResponse:
    error = ""
    try:
        # From the date-time picker (local, no offset) or ISO-8601 with an offset.
        at = moment_from_query(request.GET.get("at", ""))
    except BadRequest as invalid:
        at, error, status = None, invalid.detail, invalid.status_code
    live = list(selectors.live_in_environment(environment=environment, at=at))
    policy = environment_policy_current(environment=environment)
    approver = is_environment_approver(request.user, environment)
    # Only the present can be rolled back, and only under a policy (the gate's rollback rows).
    options = rollback_options(environment=environment) if at is None and policy else {}
    now = timezone.now()
    emergencies = list(selectors.emergency_changes(environment=environment))
    enforcement = gate_enforcement(environment=environment)
    rows = []
    for deployment in live:
        option = options.get(deployment.model_id)
        rows.append(
            LiveRow(
                deployment=deployment,
                signers=selectors.signers_of(deployment),
                health=deployment.latest_health[0] if deployment.latest_health else None,
                flags=deployment.open_flags,
                can_roll_back=option is not None
                and option.possible
                and may(
                    request.user, Action.ROLL_BACK, option.replaced, environment_approver=approver
                ),
            )
        )
    context = {
        "environment": environment,
        "policy": policy,
        "rows": rows,
        "at": at,
        "at_error": error,
        "emergencies": emergencies,
        "overdue": {cr.pk for cr in emergencies if retrospective_overdue(cr, now=now)},
        "flags": selectors.unauthorised_changes_open(environment=environment),
        "enforcement": enforcement,
        # The runtime is read now, never as of a past moment.
        "runtime": None if at else ledger_and_runtime(environment=environment, live=live),
        "only_pipeline": not any(way.latest for way in enforcement if way.by_platform),
        "can_review_flags": may_review_unauthorised_change(
            request.user, environment, environment_approver=approver
        ),
    }
    return render(request, "releases/environment_detail.html", context, status=status)


@require_POST
def environment_rollback(request: HttpRequest, name: str, model: str) -> HttpResponse:
    environment = _named(Environment, name)
    registered = _named(RegisteredModel, model)
    try:
        rollback = services.deployment_rollback(
            actor=request.user,
            environment=environment,
            model=registered,
            reason=request.POST.get("reason", ""),
            request=request,
        )
    except ValidationError as invalid:
        messages.error(request, " ".join(invalid.messages))
        return _environment_page(request, environment, status=400)
    except DomainError as denied:
        messages.error(request, denied.detail)
        return _environment_page(request, environment, status=denied.status_code)
    messages.success(
        request,
        f"{registered.name} is back on {rollback.model_version.version} in {environment.name}.",
    )
    return redirect("releases:environment", name=environment.name)


@require_POST
def unauthorised_change_review(request: HttpRequest, pk: int) -> HttpResponse:
    flag = get_object_or_404(UnauthorisedChange, pk=pk)
    try:
        services.unauthorised_change_review(
            actor=request.user, flag=flag, note=request.POST.get("note", ""), request=request
        )
    except ValidationError as invalid:
        messages.error(request, " ".join(invalid.messages))
        return _environment_page(request, flag.environment, status=400)
    except DomainError as denied:
        messages.error(request, denied.detail)
        return _environment_page(request, flag.environment, status=denied.status_code)
    messages.success(request, "The flag is cleared; your note is in the audit trail.")
    return redirect("releases:environment", name=flag.environment.name)


@require_GET
def deployment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    deployment = (
        selectors.with_provenance(Deployment.objects.filter(pk=pk)).select_related("rollback_of")
    ).first()
    if deployment is None:
        raise Http404("No such deployment.")
    return render(
        request,
        "releases/deployment_detail.html",
        {
            "deployment": deployment,
            "signers": selectors.signers_of(deployment),
            "health_checks": deployment.health_checks.order_by("-checked_at")[:20],
            "gate_decision": getattr(deployment, "gate_decision", None),
        },
    )
