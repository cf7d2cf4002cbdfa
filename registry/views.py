"""The registry's pages: models, one model with its versions, one version with its evidence,
datasets, the model inventory, and the CI helper for download. Registration comes from CI;
Model Risk concludes validations here, through `registry.model_risk`."""

import csv
import functools
import hashlib
import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_POST, require_safe
from openpyxl import Workbook
from rest_framework.exceptions import AuthenticationFailed

from audit.models import AuditEvent
from organisation.oidc import (
    ProviderError,
    form_action_to_provider,
    provider_name,
    signs_at_provider,
    step_up_not_confirmed,
    step_up_returned,
    step_up_unreachable,
    step_up_url,
)
from portal.authentication import BearerTokenAuthentication
from portal.exceptions import DomainError, NotFound, RuleDenied
from portal.models import Team
from portal.spreadsheets import safe_cell
from registry import git, hooks, model_risk, selectors
from registry.models import (
    Document,
    Finding,
    FindingSeverity,
    FindingStatus,
    LifecycleStatus,
    RegisteredModel,
    ValidationOutcome,
)
from registry.reproducibility import reproducibility

logger = logging.getLogger(__name__)
CI_HELPER = Path(__file__).resolve().parent / "ci" / "gatehouse_ci.py"


@dataclass(frozen=True)
class CiHelperRelease:
    version: str
    sha256: str


@functools.cache
def ci_helper_release() -> CiHelperRelease:
    """The served helper's version (its `VERSION`) and digest; the file changes only with a
    deployment of the portal, so they are read once."""
    content = CI_HELPER.read_bytes()
    version = re.search(rb'^VERSION = "([^"]+)"', content, re.MULTILINE)
    return CiHelperRelease(
        version=version.group(1).decode() if version else "unknown",
        sha256=hashlib.sha256(content).hexdigest(),
    )


def _found(lookup, **kwargs):
    try:
        return lookup(**kwargs)
    except NotFound as error:
        raise Http404(error.detail) from error


@require_safe
def model_list(request: HttpRequest) -> HttpResponse:
    filters = {
        "q": request.GET.get("q", "").strip(),
        "owner_team": request.GET.get("owner_team", ""),
        "risk_tier": request.GET.get("risk_tier", ""),
    }
    tier = filters["risk_tier"]
    models = selectors.model_list(
        q=filters["q"],
        owner_team=filters["owner_team"],
        risk_tier=int(tier) if tier in {"1", "2", "3"} else None,
    )
    return render(
        request,
        "registry/model_list.html",
        {
            "models": models,
            "filters": filters,
            "teams": Team.objects.order_by("name"),
            "tiers": ["1", "2", "3"],
        },
    )


@require_safe
def model_detail(request: HttpRequest, name: str) -> HttpResponse:
    model = _found(selectors.model_get, name=name)
    versions = list(selectors.model_versions(model=model))
    live = hooks.live_environments(versions)
    rows = [
        {"version": version, "repro": reproducibility(version), "live": live.get(version.pk, [])}
        for version in versions
    ]
    # Open validations first, then the newest concluded.
    validations = model.validations.select_related("validator").prefetch_related(
        "covers", "findings__owner", "documents"
    )
    history = AuditEvent.objects.filter(
        object_type=RegisteredModel._meta.label_lower, object_id=str(model.pk)
    ).order_by("-seq")[:50]
    at_provider = signs_at_provider(request.user)
    response = render(
        request,
        "registry/model_detail.html",
        {
            "at_provider": at_provider,
            "provider_name": provider_name(),
            "model": model,
            "rows": rows,
            "history": history,
            "validations": validations,
            "may_validate": model_risk.is_model_risk(request.user),
            "outcomes": ValidationOutcome.choices,
            "severities": FindingSeverity.choices,
            "closing": [FindingStatus.REMEDIATED, FindingStatus.ACCEPTED],
        },
    )
    if at_provider:
        response["Content-Security-Policy"] = form_action_to_provider(
            settings.CONTENT_SECURITY_POLICY
        )
    return response


def _signature_returned_uri(request: HttpRequest) -> str:
    # The provider knows one return address for every signature; it hands validations back
    # here (`validation_conclude_returned`).
    return request.build_absolute_uri(reverse("releases:signature-returned"))


def _to_provider(request: HttpRequest, step_up) -> HttpResponse:
    """Send a validator who signs in at the identity provider there to sign in again; the
    validation is concluded when they come back (`validation_conclude_returned`)."""
    return redirect(
        step_up_url(
            redirect_uri=_signature_returned_uri(request),
            state=step_up.state,
            nonce=step_up.nonce,
            code_verifier=step_up.code_verifier,
            acr_values="",
        )
    )


def _provider_unreachable(request: HttpRequest) -> None:
    logger.exception("validation signature: the identity provider cannot be reached")
    messages.error(request, step_up_unreachable())


@require_POST
def validation_new(request: HttpRequest, name: str) -> HttpResponse:
    """Model Risk concludes a validation from the model page: an electronic signature, like a
    sign-off (the service re-checks independence and the password; a validator who signs in at
    the identity provider is sent there to sign in again)."""
    model = _found(selectors.model_get, name=name)
    data = request.POST
    versions = list(model.versions.filter(pk__in=data.getlist("versions")))
    findings = []
    if data.get("finding_title", "").strip():
        owner = get_user_model().objects.filter(username=data.get("finding_owner", "")).first()
        findings.append(
            {
                "title": data["finding_title"],
                "severity": data.get("finding_severity", ""),
                "owner": owner or request.user,
                "remediation_due": parse_date(data.get("finding_due", "") or "") or "",
            }
        )
    upload = request.FILES.get("report")
    report = (upload.name, upload.read()) if upload else None
    conclusion = {
        "actor": request.user,
        "model": model,
        "versions": versions,
        "scope": data.get("scope", ""),
        "outcome": data.get("outcome", ""),
        "findings": findings,
        "report": report,
        "request": request,
    }
    try:
        if signs_at_provider(request.user):
            return _to_provider(request, model_risk.validation_step_up_begin_new(**conclusion))
        model_risk.validation_conclude(**conclusion, password=data.get("password", ""))
    except DomainError as refusal:
        messages.error(request, refusal.detail)
    except ValidationError as invalid:
        messages.error(request, " ".join(invalid.messages))
    except ProviderError:
        _provider_unreachable(request)
    else:
        messages.success(request, f"Validation of {model.name} concluded and signed.")
    return redirect("registry:model", name=model.name)


@require_POST
def validation_conclude(request: HttpRequest, name: str, pk: int) -> HttpResponse:
    """The validator named when Model Risk opened a validation concludes it here, with the
    findings recorded since: an electronic signature (the service checks who and the password,
    or sends a validator who signs in at the identity provider there to sign in again)."""
    model = _found(selectors.model_get, name=name)
    validation = model.validations.filter(pk=pk).first()
    if validation is None:
        raise Http404("No such validation of this model: its page lists its validations.")
    upload = request.FILES.get("report")
    report = (upload.name, upload.read()) if upload else None
    try:
        if signs_at_provider(request.user):
            step_up = model_risk.validation_step_up_begin(
                actor=request.user,
                validation=validation,
                outcome=request.POST.get("outcome", ""),
                report=report,
            )
            return _to_provider(request, step_up)
        model_risk.validation_conclude_opened(
            actor=request.user,
            validation=validation,
            outcome=request.POST.get("outcome", ""),
            password=request.POST.get("password", ""),
            report=report,
            request=request,
        )
    except DomainError as refusal:
        messages.error(request, refusal.detail)
    except ValidationError as invalid:
        messages.error(request, " ".join(invalid.messages))
    except ProviderError:
        _provider_unreachable(request)
    else:
        messages.success(request, f"Validation of {model.name} concluded and signed.")
    return redirect("registry:model", name=model.name)


def validation_conclude_returned(request: HttpRequest) -> HttpResponse:
    """Where the identity provider's answer for a validation's conclusion arrives (through
    `releases:signature-returned`). The pending conclusion is taken first (a replayed answer
    goes no further), the provider's code is traded for a checked ID token, and the service
    decides whether it confirms this signature."""
    try:
        step_up = model_risk.validation_step_up_take(
            actor=request.user, state=request.GET.get("state", ""), request=request
        )
    except DomainError as refusal:
        messages.error(request, refusal.detail)
        return redirect("dashboard")
    model = step_up.validation.model
    try:
        answer = step_up_returned(
            request,
            code_verifier=step_up.code_verifier,
            redirect_uri=_signature_returned_uri(request),
        )
    except ProviderError:
        logger.warning("validation signature: the provider's answer was refused", exc_info=True)
        messages.error(request, step_up_not_confirmed())
        return redirect("registry:model", name=model.name)
    try:
        model_risk.validation_conclude_at_provider(
            actor=request.user,
            step_up=step_up,
            claims=answer.claims,
            groups=answer.groups,
            request=request,
        )
    except DomainError as refusal:
        messages.error(request, refusal.detail)
    except ValidationError as invalid:
        messages.error(request, " ".join(invalid.messages))
    else:
        messages.success(request, f"Validation of {model.name} concluded and signed.")
    return redirect("registry:model", name=model.name)


def _card_changes(card: dict, versions, found) -> tuple[object, list[tuple[str, object, object]]]:
    """The version live in production and the model card fields that differ from its card."""
    production = hooks.production_environments()
    live = hooks.live_environments(versions)
    in_production = next(
        (v for v in versions if production & set(live.get(v.pk, [])) and v.pk != found.pk), None
    )
    if in_production is None:
        return None, []
    theirs = in_production.model_card or {}
    keys = sorted(set(card) | set(theirs))
    return in_production, [
        (key, theirs.get(key), card.get(key)) for key in keys if theirs.get(key) != card.get(key)
    ]


@require_safe
def version_detail(request: HttpRequest, name: str, version: str) -> HttpResponse:
    found = _found(selectors.model_version_get, model_name=name, version=version)
    production_version, card_changes = _card_changes(
        found.model_card, list(selectors.model_versions(model=found.model)), found
    )
    return render(
        request,
        "registry/version_detail.html",
        {
            "model": found.model,
            "version": found,
            "repro": reproducibility(found),
            "commit": git.commit_info(found.repository, found.commit_sha),
            "has_mirror": bool(found.repository.mirror_path),
            "live": hooks.live_environments([found]).get(found.pk, []),
            "params": json.dumps(found.params, indent=2, sort_keys=True),
            "metrics": sorted(found.metrics.items()),
            "card": sorted(found.model_card.items()),
            "production_version": production_version,
            "card_changes": card_changes,
        },
    )


@require_safe
def dataset_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    return render(
        request, "registry/dataset_list.html", {"datasets": selectors.dataset_list(q=q), "q": q}
    )


def _ci_helper_caller(request: HttpRequest) -> HttpResponse | None:
    """Pipelines fetch the helper with their token, so they can keep it current instead of
    copying it once: a signed-in person or any valid service token may have it. None when the
    caller may; otherwise the answer: the sign-in page for a person, 401 for a bad token."""
    if request.user.is_authenticated:
        return None
    try:
        authenticated = BearerTokenAuthentication().authenticate(request)
    except AuthenticationFailed as error:
        response = HttpResponse(f"{error.detail}\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="gatehouse"'
        return response
    if authenticated is None:
        return redirect_to_login(request.get_full_path())
    return None


def _with_helper_headers(response: HttpResponse) -> HttpResponse:
    helper = ci_helper_release()
    response["X-Gatehouse-CI-Version"] = helper.version
    response["X-Gatehouse-CI-SHA256"] = helper.sha256
    response["Cache-Control"] = "no-cache"
    return response


@login_not_required
@require_safe
def ci_helper(request: HttpRequest) -> HttpResponse:
    """The CI helper script, the same file the repository keeps (docs/ci.md), with its version
    and sha256 in headers so that a pipeline can pin and check what it runs."""
    refusal = _ci_helper_caller(request)
    if refusal is not None:
        return refusal
    return _with_helper_headers(
        FileResponse(
            CI_HELPER.open("rb"),
            as_attachment=True,
            filename=CI_HELPER.name,
            content_type="text/x-python; charset=utf-8",
        )
    )


@login_not_required
@require_safe
def ci_helper_sha256(request: HttpRequest) -> HttpResponse:
    """The helper's digest in `sha256sum`'s format, so `sha256sum -c` checks a download."""
    refusal = _ci_helper_caller(request)
    if refusal is not None:
        return refusal
    line = f"{ci_helper_release().sha256}  {CI_HELPER.name}\n"
    return _with_helper_headers(HttpResponse(line, content_type="text/plain; charset=utf-8"))


INVENTORY_COLUMNS = (
    "model",
    "owner team",
    "risk tier",
    "tier rationale",
    "lifecycle status",
    "purpose",
    "intended use",
    "prohibited uses",
    "business owner",
    "model risk owner",
    "EU AI Act high-risk",
    "regulatory rationale",
    "upstream models",
    "upstream datasets",
    "next validation due",
)


def _inventory_filters(request: HttpRequest) -> tuple[selectors.InventoryFilters, dict]:
    raw = {
        name: request.GET.get(name, "").strip()
        for name in ("risk_tier", "lifecycle_status", "owner_team", "validation_due_by")
    }
    due = parse_date(raw["validation_due_by"]) if raw["validation_due_by"] else None
    filters = selectors.InventoryFilters(
        risk_tier=int(raw["risk_tier"]) if raw["risk_tier"] in {"1", "2", "3"} else None,
        lifecycle_status=raw["lifecycle_status"]
        if raw["lifecycle_status"] in LifecycleStatus.values
        else "",
        owner_team=raw["owner_team"],
        validation_due_by=due,
    )
    return filters, raw


def _inventory_row(model) -> list:
    return [
        model.name,
        model.owner_team.name,
        model.risk_tier,
        model.tier_rationale,
        model.get_lifecycle_status_display(),
        model.purpose,
        model.intended_use,
        model.prohibited_uses,
        model.business_owner,
        model.model_risk_owner.username if model.model_risk_owner else "",
        "yes" if model.ai_act_high_risk else "no",
        model.regulatory_rationale,
        ", ".join(upstream.name for upstream in model.upstream_models.all()),
        ", ".join(model.upstream_datasets),
        model.next_validation_due.isoformat() if model.next_validation_due else "",
    ]


@require_POST
def finding_close(request: HttpRequest, name: str, pk: int) -> HttpResponse:
    """Mark a finding remediated (its owner or Model Risk) or accepted (Model Risk), with a note."""
    model = _found(selectors.model_get, name=name)
    finding = Finding.objects.filter(pk=pk, validation__model=model).first()
    if finding is None:
        raise Http404("No such finding of this model: its page lists its findings.")
    try:
        model_risk.finding_close(
            actor=request.user,
            finding=finding,
            status=request.POST.get("status", ""),
            note=request.POST.get("note", ""),
            request=request,
        )
    except DomainError as refusal:
        messages.error(request, refusal.detail)
    except ValidationError as invalid:
        messages.error(request, " ".join(invalid.messages))
    else:
        messages.success(request, f"Finding '{finding.title}' closed.")
    return redirect("registry:model", name=model.name)


@require_safe
def document_download(request: HttpRequest, pk: int) -> HttpResponse:
    """A document for signed-in people, only while it matches the digest it was attached with."""
    document = Document.objects.filter(pk=pk).first()
    if document is None:
        raise Http404("No such document.")
    try:
        content = model_risk.document_read(document)
    except RuleDenied as refusal:
        return HttpResponse(refusal.detail, status=409, content_type="text/plain; charset=utf-8")
    response = HttpResponse(content, content_type=document.content_type)
    response["Content-Disposition"] = f'attachment; filename="{document.name}"'
    response["X-Content-SHA256"] = document.sha256
    return response


@require_safe
def inventory(request: HttpRequest) -> HttpResponse:
    """The model inventory a regulator asks for first, with its filters and downloads; the page
    shows it 50 models at a time, the downloads every model the filters select."""
    filters, raw = _inventory_filters(request)
    page = selectors.model_inventory_page(
        filters=filters,
        after=selectors.InventoryPosition.parse(request.GET.get("after", "")),
        before=selectors.InventoryPosition.parse(request.GET.get("before", "")),
    )
    return render(
        request,
        "registry/inventory.html",
        {
            "models": page.rows,
            "page": page,
            "filters": raw,
            "teams": Team.objects.order_by("name"),
            "tiers": ["1", "2", "3"],
            "statuses": LifecycleStatus.choices,
        },
    )


@require_safe
def inventory_export(request: HttpRequest, fmt: str) -> HttpResponse:
    """The filtered inventory as CSV or XLSX; cells that look like formulas are defused."""
    filters, _ = _inventory_filters(request)
    rows = [
        [safe_cell(cell) for cell in _inventory_row(model)]
        for model in selectors.model_inventory(filters=filters)
    ]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(INVENTORY_COLUMNS)
        writer.writerows(rows)
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    else:
        book = Workbook()
        sheet = book.active
        sheet.title = "Model inventory"
        sheet.append(INVENTORY_COLUMNS)
        for row in rows:
            sheet.append(row)
        out = io.BytesIO()
        book.save(out)
        response = HttpResponse(
            out.getvalue(),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    response["Content-Disposition"] = f'attachment; filename="model-inventory.{fmt}"'
    return response
