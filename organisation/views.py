"""My absences: record one with a delegate, see what you stand in for, cancel. Change managers
and administrators record and cancel for anyone. Thin: the services decide."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from organisation import services
from organisation.forms import AbsenceForm, refusal_on_form
from organisation.permissions import keeps_absences
from portal.exceptions import DomainError
from portal.models import Absence, Membership
from portal.selectors import absences_of, absences_to_come, delegations_to


@require_http_methods(["GET", "POST"])
def absence_list(request: HttpRequest) -> HttpResponse:
    keeper = keeps_absences(request.user)
    form = AbsenceForm(request.POST or None, user=request.user, keeper=keeper)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            membership = form.cleaned_data["delegate"]
            person = form.cleaned_data.get("person") or request.user
            try:
                absence = services.absence_set(
                    actor=request.user,
                    person=person,
                    team=membership.team,
                    delegate=membership.user,
                    starts_on=form.cleaned_data["starts_on"],
                    ends_on=form.cleaned_data["ends_on"],
                    request=request,
                )
            except (DomainError, ValidationError) as error:
                status = refusal_on_form(form, error)
            else:
                messages.success(
                    request,
                    f"Recorded: {absence.person.get_full_name() or absence.person.username} away "
                    f"from {absence.starts_on:%Y-%m-%d} to {absence.ends_on:%Y-%m-%d}; "
                    f"{absence.delegate.get_full_name() or absence.delegate.username} signs for "
                    f"{absence.team.name} meanwhile.",
                )
                return redirect("organisation:absences")
        else:
            status = 400
    today = timezone.localdate()
    approver = Membership.objects.filter(user=request.user, is_approver=True).exists()
    return render(
        request,
        "organisation/absences.html",
        {
            "form": form,
            "keeper": keeper,
            "can_record": keeper or approver,
            "mine": absences_of(user=request.user),
            "covering": delegations_to(user=request.user, today=today),
            "everyone": absences_to_come(today=today) if keeper else [],
            "today": today,
            "time_zone": settings.TIME_ZONE,
        },
        status=status,
    )


@require_POST
def absence_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """A refusal comes back as a message on the absences page."""
    absence = get_object_or_404(Absence, pk=pk)
    try:
        services.absence_cancel(actor=request.user, absence=absence, request=request)
    except DomainError as error:
        messages.error(request, error.detail)
    else:
        messages.success(request, "The absence is cancelled; its delegate no longer signs.")
    return redirect("organisation:absences")
