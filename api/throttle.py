"""Requests per token per time window, counted in Django's cache (API_TOKEN_RATE, "120/min")."""

import time

from django.conf import settings
from django.core.cache import cache

from .rates import rate_parse


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
