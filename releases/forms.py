"""Forms of the change request pages. They check shapes; the services check the rules."""

import zoneinfo

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from portal.exceptions import DomainError
from portal.validators import SingleLine
from registry.models import ModelVersion
from releases.models import ChangeRequest, Decision, Environment

WINDOW_FORMAT = "%Y-%m-%dT%H:%M"


class WindowInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format=WINDOW_FORMAT, **kwargs)


def _time_zones() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())]


class ModelVersionChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: ModelVersion) -> str:
        return f"{obj.model.name} {obj.version} · {obj.short_sha} · build {obj.build_id}"


def _versions():
    return ModelVersion.objects.select_related("model").order_by("model__name", "-created_at")


class ChangeRequestForm(forms.Form):
    """A normal change: an exact build, an environment, the evidence and a planned window."""

    model_version = ModelVersionChoice(queryset=_versions(), label="Model and version")
    environment = forms.ModelChoiceField(queryset=Environment.objects.order_by("rank"))
    title = forms.CharField(max_length=200, validators=[SingleLine()])
    justification = forms.CharField(widget=forms.Textarea)
    risk_impact = forms.CharField(widget=forms.Textarea, required=False, label="Risk and impact")
    test_evidence = forms.CharField(widget=forms.Textarea, required=False)
    rollback_plan = forms.CharField(widget=forms.Textarea)
    time_zone = forms.ChoiceField(
        choices=_time_zones,
        required=False,
        initial=settings.TIME_ZONE,
        label="Time zone of the window",
        help_text=f"The window is read in this time zone and stored in UTC (default "
        f"{settings.TIME_ZONE}, the portal's).",
    )
    window_start = forms.DateTimeField(
        widget=WindowInput(), input_formats=[WINDOW_FORMAT], label="Window starts"
    )
    window_end = forms.DateTimeField(
        widget=WindowInput(), input_formats=[WINDOW_FORMAT], label="Window ends"
    )
    retires_model = forms.BooleanField(
        required=False,
        label="This change retires the model",
        help_text="Once approved, the model is retired: the gate refuses it everywhere.",
    )

    def clean(self) -> dict:
        """Read the window's wall-clock times in the chosen time zone (the fields read them in
        the server's); the services take aware moments, not the zone."""
        cleaned = super().clean()
        zone_name = cleaned.pop("time_zone", None)
        if zone_name:
            zone = zoneinfo.ZoneInfo(zone_name)
            for name in ("window_start", "window_end"):
                if cleaned.get(name) is not None:
                    wall_clock = timezone.make_naive(cleaned[name])
                    cleaned[name] = timezone.make_aware(wall_clock, zone)
        return cleaned


class EmergencyForm(forms.Form):
    """An emergency change: an incident and a reason instead of a window (it gets 24 hours from
    its authorisation)."""

    model_version = ModelVersionChoice(queryset=_versions(), label="Model and version")
    environment = forms.ModelChoiceField(queryset=Environment.objects.order_by("-rank"))
    incident_ref = forms.CharField(
        max_length=100, label="Incident reference", validators=[SingleLine()]
    )
    title = forms.CharField(max_length=200, validators=[SingleLine()])
    justification = forms.CharField(widget=forms.Textarea, help_text="Why it cannot wait.")
    risk_impact = forms.CharField(widget=forms.Textarea, required=False, label="Risk and impact")
    test_evidence = forms.CharField(widget=forms.Textarea, required=False)
    rollback_plan = forms.CharField(widget=forms.Textarea)


class StandardTemplateForm(forms.Form):
    """A standard change template: its build, environments, what may vary, for how long and
    how often; and the change request text its approvers read."""

    base_version = ModelVersionChoice(queryset=_versions(), label="Build it is approved with")
    environments = forms.ModelMultipleChoiceField(
        queryset=Environment.objects.order_by("rank"),
        help_text="Approved once under the policy of the highest of them.",
    )
    pipeline = forms.CharField(
        max_length=500,
        validators=[SingleLine()],
        help_text="The start of every instance's build URL, e.g. https://ci.example/retrain/.",
    )
    allowed_paths = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Globs, one a line: the only paths an instance's commits may touch "
        "(data/**, configs/*.yaml).",
    )
    valid_until = forms.DateTimeField(widget=WindowInput(), input_formats=[WINDOW_FORMAT])
    max_uses = forms.IntegerField(min_value=1, label="Uses at most")
    title = forms.CharField(max_length=200, validators=[SingleLine()])
    justification = forms.CharField(widget=forms.Textarea)
    risk_impact = forms.CharField(widget=forms.Textarea, required=False, label="Risk and impact")
    test_evidence = forms.CharField(widget=forms.Textarea, required=False)
    rollback_plan = forms.CharField(widget=forms.Textarea)


class StandardChangeForm(forms.Form):
    """A change under a standard template: a new build of its model and one of its
    environments, with a planned window."""

    model_version = ModelVersionChoice(queryset=_versions(), label="Model and version")
    environment = forms.ModelChoiceField(queryset=Environment.objects.order_by("rank"))
    title = forms.CharField(max_length=200, validators=[SingleLine()])
    justification = forms.CharField(widget=forms.Textarea)
    test_evidence = forms.CharField(widget=forms.Textarea, required=False)
    rollback_plan = forms.CharField(widget=forms.Textarea)
    window_start = forms.DateTimeField(
        widget=WindowInput(), input_formats=[WINDOW_FORMAT], label="Window starts"
    )
    window_end = forms.DateTimeField(
        widget=WindowInput(), input_formats=[WINDOW_FORMAT], label="Window ends"
    )

    def __init__(self, *args, template=None, **kwargs):
        super().__init__(*args, **kwargs)
        if template is not None:
            self.fields["model_version"].queryset = _versions().filter(model=template.model)
            self.fields["environment"].queryset = template.environments.order_by("rank")


def edit_form_class(change_request: ChangeRequest) -> type[forms.Form]:
    """The filing form of the request's kind, without the environment (which fixes the policy)."""
    base = EmergencyForm if change_request.kind == "emergency" else ChangeRequestForm
    # A template's approval has no window: the template says how long it serves.
    windowless = change_request.kind == "standard_template"

    class EditForm(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            del self.fields["environment"]
            # What a change is for is fixed when it is filed.
            self.fields.pop("retires_model", None)
            if windowless:
                for name in ("window_start", "window_end", "time_zone"):
                    del self.fields[name]

    return EditForm


class SignForm(forms.Form):
    decision = forms.ChoiceField(choices=Decision.choices, widget=forms.RadioSelect)
    comment = forms.CharField(
        widget=forms.Textarea, required=False, help_text="Required when you reject."
    )
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        label="Your password, to sign",
        strip=False,
    )
    content_digest = forms.CharField(widget=forms.HiddenInput, max_length=64)
    team = forms.CharField(widget=forms.HiddenInput, required=False)
    # The absent approver's user name, when signing as their delegate.
    on_behalf_of = forms.CharField(widget=forms.HiddenInput, required=False, max_length=150)

    def __init__(self, *args, at_provider: bool = False, **kwargs):
        """`at_provider`: the signer confirms at the identity provider, not with a password."""
        super().__init__(*args, **kwargs)
        if at_provider:
            del self.fields["password"]


class ReasonForm(forms.Form):
    """Why a change is cancelled or a sign-off withdrawn. Blank is left to the service, which
    refuses it with its own words."""

    reason = forms.CharField(max_length=300, required=False)


def refusal_on_form(form: forms.Form, error: DomainError | ValidationError) -> int:
    """Show a service's refusal on the form and return the status to answer: a field's message
    under that field (400), a rule's denial above the form with its status (403 or 409)."""
    if isinstance(error, DomainError):
        form.add_error(None, error.detail)
        return error.status_code
    by_field = error.error_dict if hasattr(error, "error_dict") else {None: error.error_list}
    for name, errors in by_field.items():
        form.add_error(name if name in form.fields else None, errors)
    return 400
