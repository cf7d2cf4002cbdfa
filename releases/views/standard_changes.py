"""Standard change templates and the changes made under them (issue 18, rule 18). Thin: the
services file, use and revoke; `releases.selectors.standard_changes` reads."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from portal.exceptions import DomainError, RuleDenied
from releases.forms import StandardChangeForm, StandardTemplateForm, refusal_on_form
from releases.permissions import Action, may
from releases.selectors.gate import USED_STATES
from releases.selectors.standard_changes import (
    standard_templates,
    template_approval,
    template_instances,
)
from releases.services import standard_changes as services


def _template(pk: int):
    return get_object_or_404(standard_templates(), pk=pk)


@require_GET
def standard_template_list(request: HttpRequest) -> HttpResponse:
    templates = [
        (template, template_approval(template), template_instances(template))
        for template in standard_templates()
    ]
    return render(request, "releases/standard_template_list.html", {"templates": templates})


@require_GET
def standard_template_detail(request: HttpRequest, pk: int) -> HttpResponse:
    template = _template(pk)
    instances = template_instances(template)
    return render(
        request,
        "releases/standard_template_detail.html",
        {
            "template": template,
            "approval": template_approval(template),
            "instances": instances,
            "uses": sum(instance.state in USED_STATES for instance in instances),
            "can_revoke": template.revoked_at is None
            and may(request.user, Action.REVOKE_STANDARD_TEMPLATE, template),
        },
    )


@require_POST
def standard_template_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    template = _template(pk)
    try:
        services.standard_template_revoke(
            actor=request.user,
            template=template,
            reason=request.POST.get("reason", ""),
            request=request,
        )
    except RuleDenied as refusal:
        raise PermissionDenied(refusal.detail) from refusal
    except DomainError as refusal:
        messages.error(request, refusal.detail)
    except ValidationError as invalid:
        messages.error(request, " ".join(invalid.messages))
    else:
        messages.success(request, f"{template.number} is revoked: no further change may use it.")
    return redirect("releases:standard-template", pk=template.pk)


def standard_template_new(request: HttpRequest) -> HttpResponse:
    status = 200
    form = StandardTemplateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            approval = services.standard_template_file(
                actor=request.user, request=request, **form.cleaned_data
            )
        except (DomainError, ValidationError) as error:
            status = refusal_on_form(form, error)
        else:
            messages.success(
                request, f"{approval.number} filed: it approves the template once approved."
            )
            return redirect("releases:change-request", number=approval.number)
    return render(
        request,
        "releases/standard_change_form.html",
        {"form": form, "heading": "Propose a standard change template"},
        status=status,
    )


def standard_change_new(request: HttpRequest, pk: int) -> HttpResponse:
    template = _template(pk)
    status = 200
    form = StandardChangeForm(request.POST or None, template=template)
    if request.method == "POST" and form.is_valid():
        try:
            change_request = services.standard_change_file(
                actor=request.user, template=template, request=request, **form.cleaned_data
            )
        except (DomainError, ValidationError) as error:
            status = refusal_on_form(form, error)
        else:
            messages.success(request, f"{change_request.number} filed under {template.number}.")
            return redirect("releases:change-request", number=change_request.number)
    return render(
        request,
        "releases/standard_change_form.html",
        {"form": form, "template": template, "heading": f"A standard change under {template}"},
        status=status,
    )
