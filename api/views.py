"""The "API tokens" settings page: make a token (its secret shown once), list, revoke."""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from common.errors import InputError
from common.http import AuthenticatedRequest

from .forms import ApiTokenForm
from .models import ApiToken
from .selectors import api_tokens_for_user
from .services import api_token_create, api_token_revoke


def _page(
    request: AuthenticatedRequest, form: ApiTokenForm, *, secret: str = "", status: int = 200
) -> HttpResponse:
    context = {"form": form, "tokens": api_tokens_for_user(user=request.user), "secret": secret}
    # HTMX swaps the card alone; without it the whole page comes back.
    template = "api/_tokens_card.html" if request.htmx else "api/tokens.html"
    return render(request, template, context, status=status)


# never_cache: the new secret must never sit in a cache.
@never_cache
@require_http_methods(["GET", "POST"])
def api_tokens_page(request: AuthenticatedRequest) -> HttpResponse:
    if request.method == "GET":
        return _page(request, ApiTokenForm())
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400 if not request.htmx else 200)
    try:
        made = api_token_create(
            owner=request.user,
            name=form.cleaned_data["name"],
            scope=form.cleaned_data["scope"],
            expires_in_days=form.cleaned_data["expires"],
        )
    except InputError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return _page(request, form, status=400 if not request.htmx else 200)
    return _page(request, ApiTokenForm(), secret=made.secret)


@never_cache
@require_POST
def api_token_revoke_view(request: AuthenticatedRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, owner=request.user)
    api_token_revoke(token=token)
    return _page(request, ApiTokenForm())
