from django import forms

from .models import CodingTask


class TaskForm(forms.ModelForm):
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
            "open_pull_request": "Needs a GitHub token on the Code agent settings page; the "
            "branch is pushed and the pull request opened by the server, never by the agent.",
        }
        labels = {"open_pull_request": "Open a pull request when done"}


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
