from typing import Any

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
            "open_pull_request": "For a repository on the connected GitHub: the branch is "
            "pushed and the pull request opened by the server with your token, never by the "
            "agent.",
        }
        labels = {"open_pull_request": "Open a pull request when done"}

    def __init__(self, *args: Any, pull_requests_blocked: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if pull_requests_blocked:  # shown as not possible; a forged tick is refused on submit
            self.fields["open_pull_request"].widget.attrs |= {
                "disabled": True,
                "aria-describedby": "pull-request-blocked",
            }


class ContinueForm(forms.Form):
    """A follow-up on a task's pull-request branch."""

    prompt = forms.CharField(
        label="What next?",
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "A follow-up for the agent, on the same branch"}
        ),
    )
