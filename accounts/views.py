from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from common.errors import InputError
from common.http import AuthenticatedRequest
from common.logging import REDACT_MIN_CHARS
from oauth_tokens.services import credential_remove

from .forms import CodeAgentSettingsForm, SignupForm
from .selectors import (
    code_agent_saved_inputs,
    code_agent_status_get,
    global_access_words,
    limit_state_get,
    preferences_get,
)
from .services import (
    agent_env_remove,
    api_key_remove,
    code_agent_settings_save,
    user_credential_refresh,
    when_limited_save,
)


@login_not_required
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    # Closed unless the operator opens it: users are normally created by an admin.
    if not settings.ACCOUNTS_ALLOW_SIGNUP:
        raise Http404("Sign-up is turned off on this server.")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome! Your account is ready.")
        return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "accounts/signup.html", {"form": form})


# --- Settings, Code agent ---------------------------------------------------------------------

_SETTINGS_URL = "accounts:code_agent_settings"


# Error pages and reporters must never show what was pasted into these fields.
_SECRET_FIELDS = ("oauth_tokens", "api_key", "agent_env")


@never_cache
@sensitive_post_parameters(*_SECRET_FIELDS)
@require_http_methods(["GET", "POST"])
def code_agent_settings(request: AuthenticatedRequest) -> HttpResponse:
    if request.method == "POST":
        form = CodeAgentSettingsForm(request.POST)
        if form.is_valid():
            changes = code_agent_settings_save(user=request.user, **form.cleaned_data)
            messages.success(
                request,
                ("Settings saved: " + "; ".join(changes) + ".")
                if changes
                else "Settings saved. Nothing had changed.",
            )
            return redirect(_SETTINGS_URL)
        status = code_agent_status_get(user=request.user)
    else:
        status = code_agent_status_get(user=request.user)
        form = CodeAgentSettingsForm(initial={"use_oauth": status.use_oauth})
    saved = code_agent_saved_inputs(user=request.user)
    feedback = {name: form.feedback(name, saved=saved[name]) for name in form.LIVE_FIELDS}
    return render(
        request,
        "accounts/code_agent_settings.html",
        {
            "form": form,
            "status": status,
            "feedback": feedback,
            "redact_min_chars": REDACT_MIN_CHARS,
            **_limits_context(request),
        },
    )


def _limits_context(request: AuthenticatedRequest) -> dict[str, object]:
    """The usage-limit card: limit state, the shared credentials, what happens when limited."""
    return {
        "limit": limit_state_get(user=request.user, now=timezone.now()),
        "global_access": global_access_words(user=request.user),
        "when_limited": preferences_get(user=request.user).when_limited,
    }


@require_POST
def code_agent_when_limited(request: AuthenticatedRequest) -> HttpResponse:
    try:
        when_limited_save(user=request.user, choice=request.POST.get("when_limited", ""))
    except InputError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Saved what your tasks do when your subscription is limited.")
    return redirect(_SETTINGS_URL)


@never_cache
@sensitive_post_parameters(*_SECRET_FIELDS)
@require_POST
def code_agent_settings_validate(request: AuthenticatedRequest, field: str) -> HttpResponse:
    """Live validation of one field, as the user types: the same form as saving."""
    if field not in CodeAgentSettingsForm.LIVE_FIELDS:
        raise Http404("No such field.")
    form = CodeAgentSettingsForm({field: request.POST.get(field, "")})
    form.is_valid()
    saved = code_agent_saved_inputs(user=request.user)[field]
    return render(
        request,
        "accounts/_field_feedback.html",
        {"name": field, "fb": form.feedback(field, saved=saved)},
    )


@never_cache
@require_POST
def code_agent_tokens_refresh(request: AuthenticatedRequest) -> HttpResponse:
    outcome = user_credential_refresh(user=request.user)
    if request.htmx:
        # The status card, and the method panel out of band: a failed refresh can change it.
        return render(
            request,
            "accounts/_token_refresh_response.html",
            {"status": code_agent_status_get(user=request.user), "outcome": outcome},
        )
    (messages.success if outcome.ok else messages.error)(request, outcome.message)
    return redirect(_SETTINGS_URL)


def _removed(
    request: AuthenticatedRequest, *, removed: bool, what: str, saved: str
) -> HttpResponse:
    """Say what a Remove button did and go back to the settings page."""
    if removed:
        messages.success(request, f"{what} removed.")
    else:
        messages.info(request, f"No {saved} saved.")
    return redirect(_SETTINGS_URL)


@never_cache
@require_POST
def code_agent_tokens_remove(request: AuthenticatedRequest) -> HttpResponse:
    removed = credential_remove(owner=request.user)
    return _removed(
        request, removed=removed, what="Your OAuth tokens were", saved="OAuth tokens were"
    )


@never_cache
@require_POST
def code_agent_api_key_remove(request: AuthenticatedRequest) -> HttpResponse:
    removed = api_key_remove(user=request.user)
    return _removed(request, removed=removed, what="Your API key was", saved="API key was")


@never_cache
@require_POST
def code_agent_env_remove(request: AuthenticatedRequest) -> HttpResponse:
    removed = agent_env_remove(user=request.user)
    return _removed(
        request,
        removed=removed,
        what="Your extra environment variables were",
        saved="extra environment variables were",
    )
