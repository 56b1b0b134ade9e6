"""Every failure of /api/ as JSON in one shape, {"code", "message", "field"}: never an HTML page,
never a 500 for what a client sent."""

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from .errors import ApiError

logger = logging.getLogger(__name__)


def _location(error: dict[str, Any]) -> str | None:
    # ("body", "body", "prompt") -> "prompt"; ("query", "wait") -> "wait"
    parts = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
    return ".".join(parts) or None


def _respond(api: NinjaAPI, request: HttpRequest, error: ApiError) -> HttpResponse:
    response = api.create_response(request, error.body(), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def _validation_message(errors: list[dict[str, Any]]) -> ApiError:
    first = errors[0] if errors else {}
    field = _location(first)
    text = str(first.get("msg", "The request is not valid."))
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ApiError(400, "invalid_input", f"{field}: {text}" if field else text, field=field)


def error_handlers_install(api: NinjaAPI) -> None:
    @api.exception_handler(ApiError)
    def api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        return _respond(api, request, exc)

    @api.exception_handler(ValidationError)
    def invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        return _respond(api, request, _validation_message(list(exc.errors)))

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        error = ApiError(
            401,
            "unauthorized",
            "Send your API token as the header Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": "Bearer"},
        )
        return _respond(api, request, error)

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return _respond(api, request, ApiError(404, "not_found", "No such task."))

    @api.exception_handler(RequestDataTooBig)
    def too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        return _respond(api, request, ApiError(413, "too_large", "The request body is too big."))

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if exc.status_code == 400:  # ninja's only one: a body json.loads refused
            error = ApiError(
                400,
                "invalid_json",
                "The request body is not valid JSON (or holds a number too long to read).",
            )
        else:
            error = ApiError(exc.status_code, "error", str(exc.message))
        return _respond(api, request, error)
