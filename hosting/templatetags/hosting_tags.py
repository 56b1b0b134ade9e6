"""{% github_connection_card %}: the GitHub card, included by the settings page's template, so
accounts never imports hosting."""

from typing import Any

from django import template

from ..forms import GitHubConnectionForm
from ..selectors import github_connection_status

register = template.Library()


@register.inclusion_tag("hosting/_github_card.html", takes_context=True)
def github_connection_card(context: template.Context) -> dict[str, Any]:
    request = context["request"]
    return {
        "status": github_connection_status(user=request.user),
        "form": GitHubConnectionForm(),
        "csrf_token": context.get("csrf_token"),
    }
