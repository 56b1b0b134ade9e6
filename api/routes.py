"""/api/ in the URL configuration: bearer tokens only, so the login of the web pages does not
apply (LoginRequiredMiddleware would send a script to the login page), and every refusal is the
API's JSON, also for an unknown path or method."""

import functools
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.urls import URLPattern, URLResolver, re_path

from .endpoints import api
from .errors import ApiError


@login_not_required
def api_not_found(request: HttpRequest, rest: str) -> JsonResponse:
    """Any other path under /api/: the API's JSON 404, not the site's HTML page."""
    return JsonResponse(ApiError(404, "not_found", "No such API endpoint.").body(), status=404)


def _json_refusal(response: HttpResponse) -> HttpResponse:
    if not isinstance(response, HttpResponseNotAllowed):
        return response
    error = ApiError(405, "method_not_allowed", f"Use {response['Allow']} here.")
    answer = JsonResponse(error.body(), status=405)
    answer["Allow"] = response["Allow"]
    return answer


def api_view(view: Callable[..., Any]) -> Callable[..., Any]:
    """The view, open without a login session, with a wrong method answered in JSON (also for
    a view of /api/ outside the Ninja API, such as the GitHub webhook)."""
    if iscoroutinefunction(view):

        async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            return _json_refusal(await view(request, *args, **kwargs))

        wrapper: Callable[..., Any] = markcoroutinefunction(async_wrapper)
    else:

        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            return _json_refusal(view(request, *args, **kwargs))

    wrapper = functools.wraps(view)(wrapper)
    return login_not_required(wrapper)


def api_urls() -> tuple[list[URLPattern | URLResolver], str, str]:
    patterns, app_name, namespace = api.urls
    wrapped: list[URLPattern | URLResolver] = [
        URLPattern(p.pattern, api_view(p.callback), p.default_args, p.name)
        if isinstance(p, URLPattern)
        else p
        for p in patterns
    ]
    return [*wrapped, re_path(r"^(?P<rest>.*)$", api_not_found)], app_name, namespace
