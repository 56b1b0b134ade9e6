from typing import Any

from django import forms

from .models import EgressLevel, Environment
from .validation import NAME_MAX_CHARS, images_allowed

SCRIPT_ATTRS = {"rows": 8, "spellcheck": "false", "class": "mono"}
SECRETS_NOT_KEPT = (
    "Nothing was saved, and the setup secrets you typed are not shown back: type them again."
)


class SecretTextarea(forms.Textarea):
    """A textarea that is always empty when the page comes back: what was typed into it never
    reaches the page again, also when the form is refused."""

    def format_value(self, value: Any) -> str | None:
        return None


class EnvironmentForm(forms.Form):
    """Text as typed; environments.services checks it (one place for the rules)."""

    name = forms.CharField(max_length=NAME_MAX_CHARS)
    image = forms.ChoiceField(choices=())
    setup_script = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs=SCRIPT_ATTRS),
        help_text="bash, run once in the checkout (~/work) before the agent, on a fresh "
        "checkout. Its exit code must be 0.",
    )
    maintenance_script = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs=SCRIPT_ATTRS),
        help_text="bash, run instead of the setup script when a cached snapshot is reused "
        "(e.g. install what changed since).",
    )
    variables = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="NAME=value, one per line. Not secret: both phases see them, the page shows "
        "them.",
    )
    setup_secrets = forms.CharField(
        required=False,
        widget=SecretTextarea(attrs={"rows": 3, "spellcheck": "false", "autocomplete": "off"}),
        help_text="NAME=value, one per line. Encrypted, never shown again, given to the setup "
        "and maintenance scripts only, never to the agent. Whatever your script writes to disk "
        "with them stays there, and the agent can read that: do not write them into files. "
        "Leave empty to keep the saved ones.",
    )
    clear_secrets = forms.BooleanField(required=False, label="Remove the saved setup secrets")
    setup_egress = forms.ChoiceField(
        choices=EgressLevel.choices, initial=EgressLevel.REGISTRIES, label="Setup's network"
    )
    setup_allow = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        label="Setup's hosts (custom)",
    )
    agent_egress = forms.ChoiceField(
        choices=EgressLevel.choices, initial=EgressLevel.AGENTS, label="Agent's network"
    )
    agent_allow = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        label="Agent's hosts (custom)",
    )
    repo_patterns = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        label="Repositories",
        help_text="One URL pattern per line, * for any characters: "
        "https://github.com/your-org/*. A new task on a matching repository gets this "
        "environment unless you choose otherwise.",
    )
    devcontainer = forms.BooleanField(
        required=False,
        label="Also run the repository's .devcontainer/devcontainer.json lifecycle commands "
        "(onCreateCommand, updateContentCommand, postCreateCommand) as setup",
    )
    shared = forms.BooleanField(required=False, label="Share with every user")

    def __init__(self, *args: Any, can_share: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        image = self.fields["image"]
        assert isinstance(image, forms.ChoiceField)
        image.choices = [(i, i) for i in images_allowed()]
        if not can_share:
            del self.fields["shared"]

    def secrets_not_kept(self) -> None:
        """On a refused form: say that typed setup secrets must be typed again."""
        if self.data.get("setup_secrets", "").strip():
            self.add_error("setup_secrets", SECRETS_NOT_KEPT)

    @staticmethod
    def initial_for(environment: Environment) -> dict[str, Any]:
        """What the edit page shows: everything but the secrets."""
        return {
            "name": environment.name,
            "image": environment.image,
            "setup_script": environment.setup_script,
            "maintenance_script": environment.maintenance_script,
            "variables": "\n".join(f"{k}={v}" for k, v in environment.variables.items()),
            "setup_egress": environment.setup_egress,
            "setup_allow": "\n".join(environment.setup_allow),
            "agent_egress": environment.agent_egress,
            "agent_allow": "\n".join(environment.agent_allow),
            "repo_patterns": "\n".join(environment.repo_patterns),
            "devcontainer": environment.devcontainer,
            "shared": environment.shared,
        }
