"""Login throttling (django-axes): what failures count against, and what a refused login sees.

Failures count per (username, address) pair against LOGIN_FAILURE_LIMIT, so one user's typos
never lock out a colleague (or the admin) behind the same address, and per address, whatever the
username, against the higher LOGIN_ADDRESS_FAILURE_LIMIT, so one client trying many usernames is
still stopped.
"""

import shlex
from dataclasses import dataclass
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

# From this failure of a pair on, the login page says how many tries are left.
WARN_FROM_FAILURE = 3


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


@dataclass(frozen=True)
class LoginFailures:
    """Recent failures (within the cool-off) of one login attempt's username and address."""

    pair: int  # this username from this address
    address: int  # any username from this address

    @property
    def pair_left(self) -> int:
        return max(0, settings.AXES_FAILURE_LIMIT - self.pair)

    @property
    def address_left(self) -> int:
        return max(0, settings.LOGIN_ADDRESS_FAILURE_LIMIT - self.address)

    @property
    def address_locked(self) -> bool:
        return self.address_left == 0

    @property
    def pair_locked(self) -> bool:
        return self.pair_left == 0


class LoginThrottleHandler(AxesDatabaseHandler):
    """axes' database handler with two limits instead of one.

    Needs AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]: axes compares one
    number with AXES_FAILURE_LIMIT, so get_failures answers the pair's failures, or the limit
    itself once the address has reached its own.
    """

    def login_failures(
        self, request: HttpRequest, credentials: dict | None = None
    ) -> LoginFailures:
        pair, address = (
            attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        )
        return LoginFailures(pair=pair, address=address)

    def reset_user_attempts(self, request: HttpRequest, credentials: dict | None = None) -> int:
        """A successful login clears its own pair's failures only: one account's success must not
        wipe the address's count (a sprayer with one account could reset it at will)."""
        pair_attempts = self.filter_user_attempts(request, credentials)[0]
        count, _ = pair_attempts.delete()
        return count

    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        failures = self.login_failures(request, credentials)
        if failures.address_locked:
            return max(failures.pair, settings.AXES_FAILURE_LIMIT)
        return failures.pair


def login_failures_get(*, request: HttpRequest, credentials: dict | None) -> LoginFailures:
    handler = AxesProxyHandler.get_implementation()
    if not isinstance(handler, LoginThrottleHandler):  # settings name another handler
        return LoginFailures(pair=0, address=0)
    return handler.login_failures(request, credentials)


def _cooloff_duration() -> str:
    """How long a lockout lasts, in words; "" when it lasts until an administrator unlocks it."""
    hours = settings.AXES_COOLOFF_TIME
    if not hours:
        return ""
    minutes = hours * 60
    if minutes < 1:
        seconds = round(minutes * 60)
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = round(minutes)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _cooloff_words() -> str:
    duration = _cooloff_duration()
    return f"for {duration}" if duration else "until an administrator unlocks it"


def tries_left_warning(failures: LoginFailures, *, username: str) -> str:
    """What the login page adds to "wrong username or password" ("" while there is no need)."""
    if failures.pair_locked or failures.address_locked:
        return ""  # the lockout page says it
    if failures.address_left < failures.pair_left:
        left = failures.address_left
        if left > 2:
            return ""
        return (
            f"{left} more failed login{'s' if left != 1 else ''} from this address, whatever "
            f"the username, and it is locked {_cooloff_words()}."
        )
    if failures.pair < WARN_FROM_FAILURE:
        return ""
    left = failures.pair_left
    return (
        f"{left} more failed login{'s' if left != 1 else ''} as \u201c{username}\u201d from this "
        f"address and it is locked {_cooloff_words()} (other users are not affected)."
    )


def unlock_commands(*, username: str | None, address: str | None, by_address: bool) -> list[str]:
    """The exact commands an operator runs on the server; quoted, as the username is typed by
    whoever is locked out."""
    manage = ".venv/bin/python manage.py"
    ip = shlex.quote(address or "ADDRESS")
    if by_address:
        return [f"{manage} axes_reset_ip {ip}"]
    name = shlex.quote(username or "NAME")
    return [f"{manage} axes_reset_ip_username {ip} {name}", f"{manage} axes_reset_username {name}"]


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """The page a locked-out login gets (both login pages): what is locked, for how long, and
    how to unlock it sooner."""
    failures = login_failures_get(request=request, credentials=credentials)
    username = get_client_username(request, credentials)
    address = getattr(request, "axes_ip_address", None) or client_ip(request)
    by_address = failures.address_locked  # then unlocking the pair alone would not help
    context: dict[str, Any] = {
        "by_address": by_address,
        "username": username,
        "failure_limit": settings.LOGIN_ADDRESS_FAILURE_LIMIT
        if by_address
        else settings.AXES_FAILURE_LIMIT,
        "cooloff": _cooloff_duration(),
        "commands": unlock_commands(username=username, address=address, by_address=by_address),
    }
    return render(
        request, "accounts/locked_out.html", context, status=settings.AXES_HTTP_RESPONSE_CODE
    )
