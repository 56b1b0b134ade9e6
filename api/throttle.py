"""Requests per token per time window, counted in Django's cache (API_TOKEN_RATE, "120/min")."""

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600}
_UNITS |= {"hour": 3600, "d": 86400, "day": 86400}


@dataclass(frozen=True)
class Rate:
    requests: int
    seconds: int


def rate_parse(*, text: str) -> Rate:
    """ "120/min" -> 120 requests per 60 s. Raises ImproperlyConfigured for anything else."""
    count, _, unit = text.strip().partition("/")
    seconds = _UNITS.get(unit.strip().lower())
    if not count.strip().isdigit() or int(count) < 1 or seconds is None:
        raise ImproperlyConfigured(
            f"API_TOKEN_RATE must look like 120/min (per s, min, hour or day), not {text!r}."
        )
    return Rate(requests=int(count), seconds=seconds)


def api_token_throttle_check(*, prefix: str) -> int:
    """Count one request of this token. 0 when it may go on, else the seconds to wait."""
    rate = rate_parse(text=settings.API_TOKEN_RATE)
    now = time.time()
    window = int(now // rate.seconds)
    key = f"api-rate:{prefix}:{window}"
    # add() then incr(): atomic in every shared cache backend, so parallel workers count as one.
    cache.add(key, 0, timeout=rate.seconds + 1)
    try:
        used = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=rate.seconds + 1)
        used = 1
    if used <= rate.requests:
        return 0
    return max(1, int((window + 1) * rate.seconds - now + 0.999))
