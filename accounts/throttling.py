"""The client address that login throttling (django-axes) counts failures against."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or the header a trusted reverse proxy sets (LOGIN_CLIENT_IP_HEADER).

    A header is only trusted when the operator names it: a client could send any header itself.
    """
    header = settings.LOGIN_CLIENT_IP_HEADER.strip()
    if header:
        value = request.META.get("HTTP_" + header.upper().replace("-", "_"), "")
        # X-Forwarded-For style lists: the proxy appends the address it saw last.
        address = value.split(",")[-1].strip()
        if address:
            return address
    return request.META.get("REMOTE_ADDR")


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """The page a locked-out login gets (both login pages): why, for how long, who can unlock."""
    minutes = settings.AXES_COOLOFF_TIME * 60 if settings.AXES_COOLOFF_TIME else None
    context = {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_minutes": round(minutes) if minutes is not None and minutes >= 1 else None,
        "cooloff_seconds": round(minutes * 60) if minutes is not None and minutes < 1 else None,
    }
    return render(
        request, "accounts/locked_out.html", context, status=settings.AXES_HTTP_RESPONSE_CODE
    )
