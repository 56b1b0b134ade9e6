"""The GitHub card of the Code agent settings page: live check, save, remove. The card itself is
rendered into the settings page by the {% github_connection_card %} tag (hosting_tags)."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from common.http import AuthenticatedRequest

from .errors import HostingError
from .services import (
    github_connection_check,
    github_connection_remove,
    github_connection_save,
    github_token_get,
)


def _back() -> HttpResponse:
    return redirect(reverse("accounts:code_agent_settings") + "#github")


@never_cache
@sensitive_post_parameters("token")
@require_POST
def github_check(request: AuthenticatedRequest) -> HttpResponse:
    """Live validation as the user types: the token (or the saved one when the box is empty),
    and the repository when one is named."""
    token = request.POST.get("token", "").strip()
    repository = request.POST.get("repository", "").strip()
    using_saved = not token
    if using_saved:
        token = github_token_get(user=request.user)
    context: dict[str, object] = {"using_saved": using_saved, "nothing": not token}
    if token and (not using_saved or repository):
        context["check"] = github_connection_check(
            user=request.user, token=token, repository=repository
        )
    return render(request, "hosting/_github_feedback.html", context)


@sensitive_post_parameters("token")
@require_POST
def github_save(request: AuthenticatedRequest) -> HttpResponse:
    try:
        connection = github_connection_save(user=request.user, token=request.POST.get("token", ""))
    except HostingError as exc:
        messages.error(request, f"GitHub token not saved: {exc.message}")
    else:
        messages.success(request, f"GitHub connected as {connection.login}.")
    return _back()


@require_POST
def github_remove(request: AuthenticatedRequest) -> HttpResponse:
    if github_connection_remove(user=request.user):
        messages.success(request, "Your GitHub token was removed.")
    else:
        messages.info(request, "No GitHub token was saved.")
    return _back()
