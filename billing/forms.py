from django import forms

from accounts.forms import PageForm

POSITIVE_INTEGER_MAX = 2_147_483_647


class MonthlyCreditsForm(PageForm):
    """A monthly number of credits: the organization's budget or an API key's limit."""

    credits = forms.IntegerField(
        min_value=1,
        max_value=POSITIVE_INTEGER_MAX,
        required=False,
        help_text="Credits per calendar month (UTC). Leave empty for no limit.",
    )

    def __init__(self, *args, label: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["credits"].label = label
