"""Bearer tokens on /api/ only: the web pages keep their sessions and never read this header."""

from django.http import HttpRequest
from ninja.security import HttpBearer

from accounts.throttling import client_ip

from .errors import ApiError
from .models import ApiToken
from .services import ApiTokenRefused, api_token_authenticate
from .throttle import api_token_throttle_check

_TOKEN_MAX_CHARS = 200  # ours are 60; anything far longer is not worth hashing


class ApiBearer(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiToken:
        if len(token) > _TOKEN_MAX_CHARS:
            raise ApiError(401, "invalid_token", "The token is not valid.")
        try:
            found = api_token_authenticate(raw=token, address=client_ip(request))
        except ApiTokenRefused as exc:
            raise ApiError(401, "invalid_token", exc.message) from None
        retry_after = api_token_throttle_check(prefix=found.prefix)
        if retry_after:
            raise ApiError(
                429,
                "rate_limited",
                f"Too many requests with this token; try again in {retry_after} s.",
                headers={"Retry-After": str(retry_after)},
            )
        return found


def token_of(request: HttpRequest) -> ApiToken:
    token = request.auth  # type: ignore[attr-defined]  # set by ninja from ApiBearer
    assert isinstance(token, ApiToken)
    return token


def writer_token_of(request: HttpRequest) -> ApiToken:
    """The request's token, which must have the tasks scope to change anything."""
    token = token_of(request)
    if not token.can_write_tasks:
        raise ApiError(
            403,
            "insufficient_scope",
            "This token may only read. Make a token with the read + tasks scope.",
        )
    return token
