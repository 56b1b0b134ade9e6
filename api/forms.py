from django import forms

from .models import TokenScope
from .services import DEFAULT_EXPIRY_DAYS, EXPIRY_CHOICES, NAME_MAX_CHARS

NEVER = "never"


def _expiry_label(days: int | None) -> str:
    return "Never expires" if days is None else f"{days} days"


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=NAME_MAX_CHARS,
        widget=forms.TextInput(attrs={"placeholder": "CI on the build server"}),
    )
    scope = forms.ChoiceField(
        choices=TokenScope.choices,
        initial=TokenScope.READ,
        widget=forms.RadioSelect,
        help_text="Read: list and read your tasks. Read + tasks: also start, cancel and "
        "continue them.",
    )
    expires = forms.ChoiceField(
        label="Expires after",
        choices=[(str(d) if d is not None else NEVER, _expiry_label(d)) for d in EXPIRY_CHOICES],
        initial=str(DEFAULT_EXPIRY_DAYS),
    )

    def clean_expires(self) -> int | None:
        value = self.cleaned_data["expires"]
        return None if value == NEVER else int(value)
