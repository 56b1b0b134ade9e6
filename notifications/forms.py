from django import forms

from .models import EventKind


class NotificationSettingsForm(forms.Form):
    events = forms.MultipleChoiceField(
        choices=EventKind.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    email_enabled = forms.BooleanField(required=False, label="Email me")
    webhook_url = forms.CharField(
        required=False,
        max_length=2000,
        label="Webhook URL",
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "off", "placeholder": "https://hooks…"}
        ),
    )
    remove_webhook = forms.BooleanField(required=False, label="Remove the saved webhook")
