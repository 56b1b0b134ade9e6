"""Login throttling (django-axes; accounts/throttling.py acts on these), read from the
environment, into which base.py has already loaded `.env`.

LOGIN_FAILURE_LIMIT failures in a row of one username from one address lock that pair only (a
colleague's typos never lock out the admin behind the same address); LOGIN_ADDRESS_FAILURE_LIMIT
failures from one address, whatever the usernames, lock the address. Until the cool-off has
passed or an admin unlocks it (admin "Access attempts", or `manage.py axes_reset_ip_username
ADDRESS NAME` / `axes_reset_ip ADDRESS` / `axes_reset`).
"""

import environ
from django.core.exceptions import ImproperlyConfigured

_env = environ.Env()

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses locked-out logins before checking
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = _env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_ADDRESS_FAILURE_LIMIT = _env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=20)
if LOGIN_ADDRESS_FAILURE_LIMIT < AXES_FAILURE_LIMIT:
    raise ImproperlyConfigured(
        f"LOGIN_ADDRESS_FAILURE_LIMIT ({LOGIN_ADDRESS_FAILURE_LIMIT}) is below LOGIN_FAILURE_LIMIT "
        f"({AXES_FAILURE_LIMIT}): an address would be locked for everyone before one username "
        "is. Make it at least as high (the default is 20)."
    )


def cooloff_hours(minutes: float) -> float | None:
    """axes counts in hours; None (not 0, which would forget every failure at once) keeps a
    lockout until an admin unlocks it."""
    return minutes / 60 if minutes > 0 else None


AXES_COOLOFF_TIME = cooloff_hours(_env.float("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]  # the handler's two scopes
AXES_HANDLER = "accounts.throttling.LoginThrottleHandler"
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429  # Too Many Requests, on our lockout page too
AXES_LOCKOUT_CALLABLE = "accounts.throttling.lockout_response"  # our page, with the wait
# Behind a reverse proxy every client shares the proxy's address: name the header the proxy sets
# to the client's address (e.g. X-Real-IP), or the per-address limit locks out everyone at once.
LOGIN_CLIENT_IP_HEADER = _env.str("LOGIN_CLIENT_IP_HEADER", default="")
AXES_CLIENT_IP_CALLABLE = "accounts.throttling.client_ip"

__all__ = [
    "AUTHENTICATION_BACKENDS",
    "AXES_CLIENT_IP_CALLABLE",
    "AXES_COOLOFF_TIME",
    "AXES_FAILURE_LIMIT",
    "AXES_HANDLER",
    "AXES_HTTP_RESPONSE_CODE",
    "AXES_LOCKOUT_CALLABLE",
    "AXES_LOCKOUT_PARAMETERS",
    "AXES_RESET_ON_SUCCESS",
    "LOGIN_ADDRESS_FAILURE_LIMIT",
    "LOGIN_CLIENT_IP_HEADER",
]
