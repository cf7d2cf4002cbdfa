"""The absence form. It checks shapes and offers only eligible people; `absence_set` checks the
rules."""

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from portal.exceptions import DomainError
from portal.models import Membership
from portal.selectors import delegate_candidates


class DateInput(forms.DateInput):
    """The browser's own date picker: nothing loaded from elsewhere."""

    input_type = "date"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%d", **kwargs)


class DelegateChoice(forms.ModelChoiceField):
    """A delegate is chosen with the team they stand in for: an approver membership."""

    def label_from_instance(self, obj: Membership) -> str:
        return f"{obj.user.get_full_name() or obj.user.get_username()} ({obj.team.name})"


class PersonChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return f"{obj.get_full_name() or obj.get_username()} ({obj.get_username()})"


class AbsenceForm(forms.Form):
    """Who is away (change managers and admins choose; others record their own), from when to
    when, and who signs meanwhile for which team."""

    person = PersonChoice(queryset=get_user_model().objects.none(), label="Who is away")
    delegate = DelegateChoice(
        queryset=Membership.objects.none(),
        label="Delegate (team)",
        help_text="An approver of the same team, who approves on your behalf while you are away.",
    )
    starts_on = forms.DateField(widget=DateInput(), label=f"Away from ({settings.TIME_ZONE})")
    ends_on = forms.DateField(widget=DateInput(), label="Back after (last day away)")

    def __init__(self, *args, user, keeper: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if keeper:
            approvers = Membership.objects.filter(is_approver=True).values("user_id")
            self.fields["person"].queryset = (
                get_user_model()
                .objects.filter(pk__in=approvers, is_active=True)
                .order_by("last_name", "username")
            )
            self.fields["delegate"].queryset = delegate_candidates()
            self.fields[
                "delegate"
            ].help_text = "An approver of the team the person approves for, other than them."
        else:
            del self.fields["person"]
            self.fields["delegate"].queryset = delegate_candidates(person=user)


def refusal_on_form(form: forms.Form, error: DomainError | ValidationError) -> int:
    """A service's refusal on the form, and the status to answer: a field's message under that
    field (400), a rule's denial above the form with its status (403 or 409)."""
    if isinstance(error, DomainError):
        form.add_error(None, error.detail)
        return error.status_code
    by_field = error.error_dict if hasattr(error, "error_dict") else {None: error.error_list}
    for name, errors in by_field.items():
        form.add_error(name if name in form.fields else None, errors)
    return 400


class SignInForm(AuthenticationForm):
    """The sign-in form, with refusals that say what to do next."""

    error_messages = {
        "invalid_login": (
            "The username or the password is not right (both are case-sensitive). Type them "
            "again; after several wrong tries, signing in from here is locked for a while. An "
            "administrator resets a forgotten password."
        ),
        "inactive": "This account is disabled: an administrator re-enables it in Admin → Users.",
    }
