"""/api/ in the URL configuration: bearer tokens only, so the login of the web pages does not
apply (LoginRequiredMiddleware would send a script to the login page)."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, URLResolver, re_path

from .endpoints import api
from .errors import ApiError


@login_not_required
def api_not_found(request: HttpRequest, rest: str) -> JsonResponse:
    """Any other path under /api/: the API's JSON 404, not the site's HTML page."""
    return JsonResponse(ApiError(404, "not_found", "No such API endpoint.").body(), status=404)


def api_urls() -> tuple[list[URLPattern | URLResolver], str, str]:
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            login_not_required(pattern.callback)
    return [*patterns, re_path(r"^(?P<rest>.*)$", api_not_found)], app_name, namespace
