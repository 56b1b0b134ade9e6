from django import forms


class GitHubConnectionForm(forms.Form):
    """The GitHub card on the settings page. The token is write-only: never rendered back."""

    token = forms.CharField(
        required=False,
        label="GitHub token",
        widget=forms.PasswordInput(
            render_value=False,
            attrs={
                "autocomplete": "off",
                "spellcheck": "false",
                "placeholder": "github_pat_...",
                "aria-describedby": "github-token-help github-feedback",
            },
        ),
    )
    repository = forms.CharField(
        required=False,
        label="Check a repository (optional)",
        max_length=500,
        widget=forms.TextInput(
            attrs={
                "spellcheck": "false",
                "placeholder": "https://github.com/you/project or you/project",
                "aria-describedby": "github-repository-help github-feedback",
            }
        ),
    )
