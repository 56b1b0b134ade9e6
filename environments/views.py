from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from common.errors import InputError
from common.http import AuthenticatedRequest

from .cache import cache_size_for
from .forms import EnvironmentForm
from .models import Environment
from .selectors import environment_get_for_user, environments_for_user
from .services import (
    EnvironmentInput,
    environment_cache_reset,
    environment_delete,
    environment_save,
)


@never_cache
def environment_list(request: AuthenticatedRequest) -> HttpResponse:
    return render(
        request,
        "environments/list.html",
        {"environments": environments_for_user(user=request.user)},
    )


def _saved(
    request: AuthenticatedRequest, form: EnvironmentForm, environment: Environment | None
) -> Environment | None:
    """The environment saved from a valid form; None (with the errors on the form) if not."""
    if not form.is_valid():
        form.secrets_not_kept()
        return None
    data = form.cleaned_data
    entered = EnvironmentInput(
        **{k: v for k, v in data.items() if k not in ("setup_secrets", "clear_secrets")},
        setup_secrets=data["setup_secrets"] or None,
        clear_secrets=data["clear_secrets"],
    )
    try:
        return environment_save(owner=request.user, data=entered, environment=environment)
    except InputError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        form.secrets_not_kept()
        return None


@never_cache
@sensitive_post_parameters("setup_secrets")
@require_http_methods(["GET", "POST"])
def environment_create(request: AuthenticatedRequest) -> HttpResponse:
    form = EnvironmentForm(request.POST or None, can_share=request.user.is_staff)
    if request.method == "POST":
        environment = _saved(request, form, None)
        if environment is not None:
            messages.success(request, f"Environment {environment.name} saved.")
            return redirect("environments:edit", environment_id=environment.pk)
    return render(request, "environments/edit.html", {"form": form, "environment": None})


@never_cache
@sensitive_post_parameters("setup_secrets")
@require_http_methods(["GET", "POST"])
def environment_edit(request: AuthenticatedRequest, environment_id: int) -> HttpResponse:
    environment = environment_get_for_user(user=request.user, environment_id=environment_id)
    form = EnvironmentForm(
        request.POST or None,
        initial=EnvironmentForm.initial_for(environment),
        can_share=request.user.is_staff,
    )
    if request.method == "POST":
        saved = _saved(request, form, environment)
        if saved is not None:
            messages.success(request, f"Environment {saved.name} saved as version {saved.version}.")
            return redirect("environments:edit", environment_id=saved.pk)
    snapshots, cache_bytes = cache_size_for(environment=environment)
    context = {
        "form": form,
        "environment": environment,
        "snapshots": snapshots,
        "cache_bytes": cache_bytes,
    }
    return render(request, "environments/edit.html", context)


@require_POST
def environment_delete_view(request: AuthenticatedRequest, environment_id: int) -> HttpResponse:
    environment = environment_get_for_user(user=request.user, environment_id=environment_id)
    environment_delete(environment=environment)
    messages.success(request, f"Environment {environment.name} deleted.")
    return redirect("environments:list")


@require_POST
def environment_cache_reset_view(
    request: AuthenticatedRequest, environment_id: int
) -> HttpResponse:
    environment = environment_get_for_user(user=request.user, environment_id=environment_id)
    removed = environment_cache_reset(environment=environment)
    messages.success(
        request, f"Cache reset: {removed} snapshot(s) removed; the next task runs setup afresh."
    )
    return redirect("environments:edit", environment_id=environment.pk)
