"""The change request pages. Thin: forms check shapes, services check rules, selectors decide
what each person sees. A rule's refusal is shown on the page with the service's sentence and
answered with its status (403 or 409), so a bypassed button gets the same answer as the API."""

import logging
from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

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
from portal.exceptions import Conflict, DomainError, NotFound, RuleDenied
from portal.models import Team
from registry.models import ModelVersion
from registry.selectors import validation_step_up_waits
from registry.views import validation_conclude_returned
from releases.evidence_pack import evidence_pack_build
from releases.forms import (
    ChangeRequestForm,
    EmergencyForm,
    ReasonForm,
    SignForm,
    edit_form_class,
    refusal_on_form,
)
from releases.models import Decision, Environment, SignOff
from releases.permissions import Action, denial, signature_meaning
from releases.selectors import change_requests as selectors
from releases.selectors.commits import release_commits
from releases.selectors.policy import environment_policies_current, freeze_windows_active
from releases.selectors.windows import next_windows
from releases.services import change_requests as services
from releases.services.gate import CONFLICT_CODES, gate_evaluate
from releases.states import Kind, State

logger = logging.getLogger(__name__)


def _get(number: str):
    try:
        return selectors.change_request_get(number=number)
    except NotFound as error:
        raise Http404(error.detail) from error


def _page(request: HttpRequest, number: str) -> selectors.ChangeRequestPage:
    try:
        return selectors.change_request_page(user=request.user, number=number)
    except NotFound as error:
        raise Http404(error.detail) from error


def _detail(change_request) -> HttpResponse:
    return redirect("releases:change-request", number=change_request.number)


def _tell_conflicts(request: HttpRequest, change_request) -> None:
    """Issue 18: what else changes in the same window, said when a change is filed or
    submitted, while there is time to agree an order (the change page shows it too)."""
    answer = gate_evaluate(
        environment=change_request.environment,
        model=change_request.model_version.model,
        version=change_request.model_version.version,
        change_request=change_request,
    )
    for reason in [*answer.reasons, *answer.warnings]:
        if reason.code in CONFLICT_CODES:
            messages.warning(request, f"{reason.code}: {reason.message}")


@require_GET
def waiting(request: HttpRequest) -> HttpResponse:
    items = selectors.change_requests_waiting_for(user=request.user)
    return render(request, "releases/waiting.html", {"items": items})


@require_GET
def change_request_list(request: HttpRequest) -> HttpResponse:
    filters = selectors.ChangeRequestFilters(
        **{
            name: request.GET.get(name, "").strip()
            for name in ("state", "environment", "model", "requester", "team", "kind")
        }
    )
    cursors = {
        name: int(value) if value.isdigit() and len(value) <= 18 else None
        for name in ("older_than", "newer_than")
        for value in [request.GET.get(name, "")]
    }
    page = selectors.change_request_list_page(user=request.user, filters=filters, **cursors)
    return render(
        request,
        "releases/change_request_list.html",
        {
            "change_requests": page.rows,
            "page": page,
            "filters": filters,
            "states": State.choices,
            "environments": Environment.objects.order_by("rank"),
            "teams": Team.objects.order_by("name"),
        },
    )


def _preview(form) -> dict:
    """The commits the chosen build brings to the chosen environment, once both are chosen."""
    version = form.cleaned_data.get("model_version") if form.is_bound else None
    environment = form.cleaned_data.get("environment") if form.is_bound else None
    if not form.is_bound:
        version, environment = form.initial.get("model_version"), form.initial.get("environment")
    if isinstance(version, ModelVersion) and isinstance(environment, Environment):
        return {
            "preview_version": version,
            "preview_environment": environment,
            "preview_commits": release_commits(model_version=version, environment=environment),
        }
    return {}


def _suggested_windows() -> dict[str, dict[str, str]]:
    """The next window each environment's freezes allow, as UTC instants for the page's script,
    which shows them in the person's own time zone."""
    environments = list(Environment.objects.order_by("rank"))
    return {
        str(environment_id): {"start": start.isoformat(), "end": end.isoformat()}
        for environment_id, (start, end) in next_windows(environments).items()
    }


def _initial(request: HttpRequest, windows: dict[str, dict[str, str]]) -> dict:
    initial = {}
    version = request.GET.get("model_version", "")
    if version.isdigit():
        initial["model_version"] = (
            ModelVersion.objects.select_related("model").filter(pk=int(version)).first()
        )
    environment = request.GET.get("environment", "")
    if environment:
        initial["environment"] = Environment.objects.filter(name=environment).first()
    chosen = initial.get("environment") or Environment.objects.order_by("rank").first()
    if chosen is not None and str(chosen.pk) in windows:
        initial["environment"] = chosen
        window = windows[str(chosen.pk)]
        initial["window_start"] = datetime.fromisoformat(window["start"])
        initial["window_end"] = datetime.fromisoformat(window["end"])
    return {key: value for key, value in initial.items() if value is not None}


def _file(request: HttpRequest, form_class, kind: str, template_title: str) -> HttpResponse:
    """The filing form of either kind: preview the commits, keep a draft, or file."""
    status = 200
    windows = _suggested_windows() if kind == Kind.NORMAL else {}
    if request.method == "POST":
        form = form_class(request.POST)
        action = request.POST.get("action", "file")
        if form.is_valid() and action in {"draft", "file"}:
            create = (
                services.change_request_file if action == "file" else services.change_request_create
            )
            try:
                change_request = create(
                    actor=request.user, request=request, kind=kind, **form.cleaned_data
                )
            except (DomainError, ValidationError) as error:
                status = refusal_on_form(form, error)
            else:
                verb = "filed" if action == "file" else "saved as a draft"
                messages.success(request, f"{change_request.number} {verb}.")
                _tell_conflicts(request, change_request)
                return _detail(change_request)
    else:
        form = form_class(initial=_initial(request, windows))
    return render(
        request,
        "releases/change_request_form.html",
        {
            "form": form,
            "heading": template_title,
            "kind": kind,
            "suggested_windows": windows,
            # A preview of a half-filled form is not a failed filing: no "required" errors.
            "previewing": request.method == "POST" and request.POST.get("action") == "preview",
            **_preview(form),
        },
        status=status,
    )


def change_request_new(request: HttpRequest) -> HttpResponse:
    return _file(request, ChangeRequestForm, Kind.NORMAL, "Request a change")


def emergency_new(request: HttpRequest) -> HttpResponse:
    return _file(request, EmergencyForm, Kind.EMERGENCY, "File an emergency change")


@require_GET
def change_request_detail(request: HttpRequest, number: str) -> HttpResponse:
    page = _page(request, number)
    return render(request, "releases/change_request_detail.html", {"page": page})


@require_GET
def change_request_evidence(request: HttpRequest, number: str) -> HttpResponse:
    """The evidence pack, as the API gives it (releases/evidence_pack.py)."""
    change_request = _get(number)
    try:
        name, pack = evidence_pack_build(change_request=change_request)
    except Conflict as refusal:
        messages.error(request, refusal.detail)
        return _detail(change_request)
    response = HttpResponse(pack, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def change_request_edit(request: HttpRequest, number: str) -> HttpResponse:
    change_request = _get(number)
    refused = denial(request.user, Action.EDIT, change_request)
    if isinstance(refused, RuleDenied):
        raise PermissionDenied(refused.detail)
    if refused is not None:
        messages.error(request, refused.detail)
        return _detail(change_request)
    form_class = edit_form_class(change_request)
    status = 200
    if request.method == "POST":
        form = form_class(request.POST)
        if form.is_valid():
            try:
                services.change_request_edit(
                    actor=request.user,
                    change_request=change_request,
                    request=request,
                    **form.cleaned_data,
                )
            except (DomainError, ValidationError) as error:
                status = refusal_on_form(form, error)
            else:
                messages.success(
                    request,
                    f"{change_request.number} saved. It is a draft again: submit it when ready.",
                )
                return _detail(change_request)
    else:
        form = form_class(
            initial={name: getattr(change_request, name) for name in services.EDITABLE_FIELDS}
        )
    return render(
        request,
        "releases/change_request_form.html",
        {
            "form": form,
            "heading": f"Edit {change_request.number}",
            "change_request": change_request,
            "kind": change_request.kind,
        },
        status=status,
    )


def _refused(request: HttpRequest, number: str, message: str, status: int) -> HttpResponse:
    """The change's page again with the refusal on it, answered with the refusal's status (403,
    409 or 400, as the API answers it) rather than a redirect that reads as success."""
    messages.error(request, message)
    page = _page(request, number)
    return render(request, "releases/change_request_detail.html", {"page": page}, status=status)


def _act(request: HttpRequest, number: str, action) -> HttpResponse:
    change_request = _get(number)
    try:
        action(change_request)
    except DomainError as error:
        return _refused(request, number, error.detail, error.status_code)
    except ValidationError as invalid:
        return _refused(request, number, " ".join(invalid.messages), 400)
    return _detail(change_request)


@require_POST
def change_request_submit(request: HttpRequest, number: str) -> HttpResponse:
    def submit(change_request) -> None:
        submitted = services.change_request_submit(
            actor=request.user, change_request=change_request, request=request
        )
        _tell_conflicts(request, submitted)

    return _act(request, number, submit)


def _with_reason(request: HttpRequest, number: str, action) -> HttpResponse:
    """A move that needs a reason: a reason too long never reaches the service."""
    form = ReasonForm(request.POST)
    if not form.is_valid():
        return _refused(request, number, " ".join(form.errors["reason"]), 400)
    return _act(request, number, lambda cr: action(cr, form.cleaned_data["reason"]))


@require_POST
def change_request_cancel(request: HttpRequest, number: str) -> HttpResponse:
    return _with_reason(
        request,
        number,
        lambda cr, reason: services.change_request_cancel(
            actor=request.user, change_request=cr, reason=reason, request=request
        ),
    )


@require_POST
def sign_off_withdraw(request: HttpRequest, number: str, pk: int) -> HttpResponse:
    def withdraw(change_request, reason: str) -> None:
        sign_off = SignOff.objects.filter(change_request=change_request, pk=pk).first()
        if sign_off is None:
            raise Http404(f"{number} has no sign-off {pk}.")
        services.sign_off_withdraw(
            actor=request.user, sign_off=sign_off, reason=reason, request=request
        )
        messages.success(request, f"Your sign-off on {number} is withdrawn.")

    return _with_reason(request, number, withdraw)


def _signature_returned_uri(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("releases:signature-returned"))


def _require_principal(principal_name: str, principal) -> None:
    if principal_name and principal is None:
        raise RuleDenied(
            f"Nobody here is called '{principal_name}'; nobody named you their delegate under "
            "that name.",
            code="not_a_delegate",
        )


def _sign_at_provider(
    request: HttpRequest, change_request, form: SignForm, team, principal
) -> HttpResponse:
    """Send a signer who signs in at the identity provider there to sign in again; the
    signature is given when they come back (`signature_returned`)."""
    step_up = services.change_request_step_up_begin(
        actor=request.user,
        change_request=change_request,
        decision=form.cleaned_data["decision"],
        comment=form.cleaned_data["comment"],
        content_digest=form.cleaned_data["content_digest"],
        team=team,
        on_behalf_of=principal,
    )
    return redirect(
        step_up_url(
            redirect_uri=_signature_returned_uri(request),
            state=step_up.state,
            nonce=step_up.nonce,
            code_verifier=step_up.code_verifier,
            acr_values=step_up.acr_values,
        )
    )


def change_request_sign(request: HttpRequest, number: str) -> HttpResponse:
    """The electronic signature: the meaning is shown, the password asked again, or for people
    who sign in at the identity provider, a new sign-in there. A POST always goes to the
    service, which decides; the page is only offered to those who may sign."""
    page = _page(request, number)
    change_request = page.change_request
    asked = request.POST if request.method == "POST" else request.GET
    wanted = asked.get("team")
    team = Team.objects.filter(slug=wanted).first() if wanted else None
    principal_name = asked.get("on_behalf_of", "")
    principal = (
        get_user_model().objects.filter(username=principal_name).first() if principal_name else None
    )

    # As a delegate, only the places lent by that absent approver are offered.
    offered = (
        [d.slot for d in page.delegate_slots if principal and d.principal.pk == principal.pk]
        if principal_name
        else page.sign_slots
    )
    slot = next(
        (s for s in offered if team is None or (s.team is not None and s.team.pk == team.pk)),
        None,
    )
    status = 200
    at_provider = signs_at_provider(request.user)
    if request.method == "POST":
        form = SignForm(request.POST, at_provider=at_provider)
        if form.is_valid() and at_provider:
            try:
                _require_principal(principal_name, principal)
                return _sign_at_provider(request, change_request, form, team, principal)
            except (DomainError, ValidationError) as error:
                status = refusal_on_form(form, error)
            except ProviderError:
                logger.exception("signature: the identity provider cannot be reached")
                form.add_error(None, step_up_unreachable())
                status = 503
        elif form.is_valid():
            try:
                _require_principal(principal_name, principal)
                sign_off = services.change_request_sign(
                    actor=request.user,
                    change_request=change_request,
                    decision=form.cleaned_data["decision"],
                    comment=form.cleaned_data["comment"],
                    password=form.cleaned_data["password"],
                    content_digest=form.cleaned_data["content_digest"],
                    team=team,
                    on_behalf_of=principal,
                    request=request,
                )
            except (DomainError, ValidationError) as error:
                status = refusal_on_form(form, error)
            else:
                messages.success(request, f"Signed: “{sign_off.meaning}”.")
                return _detail(change_request)
        else:
            status = 400
    else:
        if slot is None:
            messages.error(
                request,
                f"There is nothing for you to sign on {number}: it waits for no signature of "
                "yours. Its page says whom it waits for.",
            )
            return _detail(change_request)
        form = SignForm(
            initial={
                "content_digest": change_request.content_digest,
                "team": slot.team.slug if slot.team else "",
                "on_behalf_of": principal_name,
                "decision": Decision.APPROVE,
            },
            at_provider=at_provider,
        )
    meanings = (
        {
            decision: signature_meaning(
                change_request=change_request,
                slot=slot,
                decision=decision,
                principal=principal if principal_name else None,
            )
            for decision in Decision.values
        }
        if slot
        else {}
    )
    response = render(
        request,
        "releases/change_request_sign.html",
        {
            "page": page,
            "form": form,
            "slot": slot,
            "meanings": meanings,
            "at_provider": at_provider,
            "provider_name": provider_name(),
            "on_behalf_of": principal if principal_name else None,
        },
        status=status,
    )
    if at_provider:
        response["Content-Security-Policy"] = form_action_to_provider(
            settings.CONTENT_SECURITY_POLICY
        )
    return response


@require_GET
def signature_returned(request: HttpRequest) -> HttpResponse:
    """Where the identity provider sends a signer back, one address for every signature: a
    validation's conclusion goes on in the registry (`validation_conclude_returned`). For a
    change request, the pending signature is taken first (a replayed answer goes no further),
    the provider's code is traded for a checked ID token, and the service decides whether it
    confirms this signature."""
    if validation_step_up_waits(state=request.GET.get("state", "")):
        return validation_conclude_returned(request)
    try:
        step_up = services.change_request_step_up_take(
            actor=request.user, state=request.GET.get("state", ""), request=request
        )
    except DomainError as refusal:
        messages.error(request, refusal.detail)
        return redirect("dashboard")
    change_request = step_up.change_request
    try:
        answer = step_up_returned(
            request,
            code_verifier=step_up.code_verifier,
            redirect_uri=_signature_returned_uri(request),
        )
    except ProviderError:
        logger.warning("signature: the identity provider's answer was refused", exc_info=True)
        messages.error(request, step_up_not_confirmed())
        return _detail(change_request)
    try:
        sign_off = services.change_request_sign_at_provider(
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
        messages.success(request, f"Signed: “{sign_off.meaning}”.")
    return _detail(change_request)


@require_GET
def freeze_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    return render(
        request,
        "releases/freeze_list.html",
        {
            "freezes": freeze_windows_active().filter(ends_at__gte=now).order_by("starts_at"),
            "now": now,
            "policies": sorted(
                environment_policies_current().values(), key=lambda p: p.environment.rank
            ),
        },
    )


@require_GET
def emergency_list(request: HttpRequest) -> HttpResponse:
    include_final = request.GET.get("all") == "1"
    return render(
        request,
        "releases/emergency_list.html",
        {
            "rows": selectors.emergency_overview(include_final=include_final),
            "include_final": include_final,
            "now": timezone.now(),
        },
    )
