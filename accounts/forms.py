from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.exceptions import ValidationError
from django.utils import timezone

from oauth_tokens.formats import ParsedCredential, TokenFormatError, credential_input_parse

from .live_check import (
    InputDescription,
    agent_env_describe,
    api_key_describe,
    credential_input_describe,
)
from .parsers import SettingsInputError, agent_env_parse, api_key_parse
from .throttling import login_failures_get, tries_left_warning


class SignupForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        fields = ("username",)


class LoginForm(AuthenticationForm):
    """Django's login form, saying how many tries are left before the lockout."""

    def clean(self) -> dict[str, Any]:
        try:
            return super().clean()
        except ValidationError as error:
            if error.code != "invalid_login" or self.request is None:
                raise
            username = self.cleaned_data.get("username") or ""
            failures = login_failures_get(request=self.request, credentials={"username": username})
            warning = tries_left_warning(failures, username=username)
            if not warning:
                raise
            raise ValidationError([error, ValidationError(warning, code="tries_left")]) from None


class AdminLoginForm(LoginForm, AdminAuthenticationForm):
    """The admin's login form (staff only), with the same words."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: which part (None = the whole input) and why."""

    field: str | None
    message: str


@dataclass(frozen=True)
class FieldFeedback:
    """What to show next to a field: problems, or what was understood, or a hint."""

    problems: list[Problem] = field(default_factory=list)
    understood: InputDescription | None = None
    hint: str = ""
    # Valid, but not saved because another field had a problem; the box was emptied.
    paste_again: bool = False


_EMPTY_HINTS = {
    "oauth_tokens": "Empty: your saved tokens are kept.",
    "api_key": "Empty: your saved key is kept.",
    "agent_env": "Empty: your saved variables are kept.",
}
_NOTHING_SAVED_HINTS = {
    "oauth_tokens": "Paste your tokens to see what they contain before saving.",
    "api_key": "Optional.",
    "agent_env": "Optional.",
}

TOKENS_PLACEHOLDER = """{"claudeAiOauth": {"accessToken": "sk-ant-oat01-...", \
"refreshToken": "sk-ant-ort01-...", "expiresAt": 1767225600000, "scopes": ["user:inference"]}}

or a setup token on its own: sk-ant-oat01-..."""
ENV_PLACEHOLDER = '{"GITHUB_TOKEN": "ghp_...", "NODE_ENV": "test"}'


class WriteOnlyTextarea(forms.Textarea):
    """A text box that never renders a value back, like PasswordInput(render_value=False): what
    was pasted (tokens, secret values) must not return in a page after an error, where caches,
    browser history and screenshots would keep it."""

    def format_value(self, value: Any) -> str | None:
        return None


# Fields whose input is never rendered back; the page asks to paste them again after an error.
SECRET_FIELD_LABELS = {
    "oauth_tokens": "OAuth tokens",
    "api_key": "API key",
    "agent_env": "environment variables",
}


class CodeAgentSettingsForm(forms.Form):
    """Every field is validated by the one function that owns its rule; the live check on each
    keystroke binds this same form, so it can never disagree with saving."""

    LIVE_FIELDS = ("oauth_tokens", "api_key", "agent_env")

    use_oauth = forms.BooleanField(
        required=False, label="Use Claude OAuth (Claude Max subscribers)"
    )
    oauth_tokens = forms.CharField(
        required=False,
        strip=False,
        label="Claude OAuth tokens",
        widget=WriteOnlyTextarea(
            attrs={
                "rows": 7,
                "class": "code",
                "spellcheck": "false",
                "autocomplete": "off",
                "autocapitalize": "off",
                "placeholder": TOKENS_PLACEHOLDER,
            }
        ),
    )
    api_key = forms.CharField(
        required=False,
        label="Anthropic API key",
        # Write-only: the key is never rendered back, not even after an error.
        widget=forms.PasswordInput(
            render_value=False,
            attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "sk-ant-api03-..."},
        ),
    )
    agent_env = forms.CharField(
        required=False,
        strip=False,
        label="Extra environment variables for the agent",
        widget=WriteOnlyTextarea(
            attrs={
                "rows": 4,
                "class": "code",
                "spellcheck": "false",
                "autocomplete": "off",
                "autocapitalize": "off",
                "placeholder": ENV_PLACEHOLDER,
            }
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.problems: dict[str, list[Problem]] = {}
        for name in self.LIVE_FIELDS:
            # The live check's hx-* attributes are in these widget templates, not in code.
            widget = self.fields[name].widget
            widget.template_name = (
                "accounts/widgets/live_textarea.html"
                if isinstance(widget, forms.Textarea)
                else "accounts/widgets/live_input.html"
            )

    def _rejection(
        self, name: str, exc: TokenFormatError | SettingsInputError
    ) -> forms.ValidationError:
        # Keep the field path apart so the page can show "which field, why".
        self.problems.setdefault(name, []).append(Problem(exc.field, exc.message))
        return forms.ValidationError(str(exc), code="invalid")

    def clean_oauth_tokens(self) -> ParsedCredential | None:
        raw = self.cleaned_data["oauth_tokens"]
        if not raw.strip():
            return None
        try:
            return credential_input_parse(raw=raw)
        except TokenFormatError as exc:
            raise self._rejection("oauth_tokens", exc) from None

    def clean_api_key(self) -> str:
        try:
            return api_key_parse(raw=self.cleaned_data["api_key"])
        except SettingsInputError as exc:
            raise self._rejection("api_key", exc) from None

    def clean_agent_env(self) -> dict[str, str] | None:
        try:
            return agent_env_parse(raw=self.cleaned_data["agent_env"])
        except SettingsInputError as exc:
            raise self._rejection("agent_env", exc) from None

    def feedback(self, name: str, *, saved: bool = False) -> FieldFeedback:
        """The note beside a field. ``saved``: whether something is saved that empty keeps."""
        if not self.is_bound:
            return FieldFeedback(hint=(_EMPTY_HINTS if saved else _NOTHING_SAVED_HINTS)[name])
        if name in self.problems:
            return FieldFeedback(problems=self.problems[name])
        if name in self.errors:  # a rule of the field itself, not of our parsers
            return FieldFeedback(problems=[Problem(None, str(e)) for e in self.errors[name]])
        value = self.cleaned_data.get(name)
        if value is None or value == "":
            return FieldFeedback(hint=(_EMPTY_HINTS if saved else _NOTHING_SAVED_HINTS)[name])
        if name == "oauth_tokens":
            understood = credential_input_describe(parsed=value, now=timezone.now())
        elif name == "api_key":
            understood = api_key_describe(key=value)
        else:
            understood = agent_env_describe(env=value)
        return FieldFeedback(understood=understood, paste_again=bool(self.errors))

    @property
    def emptied_fields(self) -> list[str]:
        """After a refused save: the secret fields that had input, which the page does not
        render back (see WriteOnlyTextarea), in words."""
        if not self.is_bound or not self.errors:
            return []
        return [
            label
            for name, label in SECRET_FIELD_LABELS.items()
            if str(self.data.get(name, "")).strip()
        ]

    @property
    def problem_count(self) -> int:
        return sum(len(errors) for errors in self.errors.values())
