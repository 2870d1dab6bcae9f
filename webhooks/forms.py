from django import forms

from accounts.forms import PageForm
from common import outbound
from webhooks.models import EventType


class EndpointForm(PageForm):
    url = forms.CharField(label="URL", max_length=2048)
    description = forms.CharField(max_length=500, required=False)
    events = forms.MultipleChoiceField(
        choices=EventType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave all unticked to receive every type.",
    )

    def clean_url(self):
        url = self.cleaned_data["url"].strip()
        try:
            outbound.validate_public_url(url)
        except outbound.UnsafeUrl as exc:
            raise forms.ValidationError(str(exc)) from None
        return url


class ResendFailedForm(PageForm):
    since = forms.DateTimeField(
        label="Failed since (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
    )
