from typing import Any

from django import forms
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from environments.selectors import environments_for_user
from environments.services import CHOICE_AUTO, CHOICE_NONE

from .models import CodingTask


class TaskForm(forms.ModelForm):
    environment = forms.ChoiceField(
        required=False,
        initial=CHOICE_AUTO,
        help_text="What the container holds before the agent starts (Environments page).",
    )

    class Meta:
        model = CodingTask
        fields = ("repo_url", "branch", "prompt", "open_pull_request")
        widgets = {
            "repo_url": forms.TextInput(
                attrs={"placeholder": "https://github.com/you/project.git"}
            ),
            "branch": forms.TextInput(attrs={"placeholder": "default branch"}),
            "prompt": forms.Textarea(attrs={"rows": 6, "placeholder": "What should the agent do?"}),
        }
        help_texts = {
            "branch": "Leave empty for the repository's default branch.",
            "open_pull_request": "For a repository on the connected GitHub: the branch is "
            "pushed and the pull request opened by the server with your token, never by the "
            "agent.",
        }
        labels = {"open_pull_request": "Open a pull request when done"}

    def __init__(
        self,
        *args: Any,
        user: AbstractBaseUser | AnonymousUser | None = None,
        pull_requests_blocked: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        choices = [(CHOICE_AUTO, "The one matching the repository"), (CHOICE_NONE, "None")]
        if user is not None:
            choices += [
                (str(e.pk), f"{e.name}{' (shared)' if e.shared else ''}")
                for e in environments_for_user(user=user)
            ]
        field = self.fields["environment"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices
        if pull_requests_blocked:  # shown as not possible; a forged tick is refused on submit
            self.fields["open_pull_request"].widget.attrs |= {
                "disabled": True,
                "aria-describedby": "pull-request-blocked",
            }


class ContinueForm(forms.Form):
    """A follow-up: a new task that starts from this one's result and conversation."""

    prompt = forms.CharField(
        label="What next?",
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "What next? The agent remembers the conversation"}
        ),
    )


class MessageForm(forms.Form):
    """A message to the task's running agent (its size is checked by tasks.follow_ups)."""

    text = forms.CharField(
        label="Send a message",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Steer the agent while it works"}),
    )
