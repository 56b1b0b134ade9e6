from typing import Any

from django import forms

from .models import EventKind


class NotificationSettingsForm(forms.Form):
    events = forms.MultipleChoiceField(
        choices=EventKind.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    email_enabled = forms.BooleanField(required=False, label="Email me")
    # Never filled from the saved webhook (its path is a secret); a refused one comes back as
    # typed, so it can be corrected rather than typed again.
    webhook_url = forms.CharField(
        required=False,
        max_length=2000,
        label="Webhook URL",
        widget=forms.URLInput(
            attrs={
                "autocomplete": "off",
                "spellcheck": "false",
                "placeholder": "https://hooks…",
            }
        ),
    )
    remove_webhook = forms.BooleanField(required=False, label="Remove the saved webhook")

    def __init__(self, *args: Any, email_usable: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Off and unchangeable while email cannot reach this user (the page says why).
        self.fields["email_enabled"].disabled = not email_usable
