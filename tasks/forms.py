from django import forms

from .models import CodingTask


class TaskForm(forms.ModelForm):
    class Meta:
        model = CodingTask
        fields = ("repo_url", "branch", "prompt")
        widgets = {
            "repo_url": forms.TextInput(
                attrs={"placeholder": "https://github.com/you/project.git"}
            ),
            "branch": forms.TextInput(attrs={"placeholder": "default branch"}),
            "prompt": forms.Textarea(attrs={"rows": 6, "placeholder": "What should the agent do?"}),
        }
        help_texts = {"branch": "Leave empty for the repository's default branch."}
