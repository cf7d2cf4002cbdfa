from django import forms

from audit.actions import AuditAction
from audit.selectors import EventFilters


class EventFilterForm(forms.Form):
    """The auditor's filters; the same fields as the API's query parameters."""

    about = forms.CharField(
        required=False,
        max_length=100,
        label="About",
        help_text="CR-22, a model's name, a deployment (D-17) or a commit SHA",
        widget=forms.TextInput(attrs={"placeholder": "CR-22, credit-scoring, D-17, 3f2a9c1…"}),
    )
    model = forms.CharField(required=False, max_length=100, label="Model")
    actor = forms.CharField(required=False, max_length=150, label="Actor")
    action = forms.ChoiceField(
        required=False, choices=[("", "Any action"), *AuditAction.choices], label="Action"
    )
    object_type = forms.CharField(required=False, max_length=100, label="Object type")
    object_id = forms.CharField(required=False, max_length=100, label="Object id")
    environment = forms.CharField(required=False, max_length=100, label="Environment")
    since = forms.DateTimeField(
        required=False, label="From", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    until = forms.DateTimeField(
        required=False, label="Until", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    cursor = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def filters(self) -> EventFilters:
        return EventFilters.from_data(self.cleaned_data)
