"""A request rate as the settings write it ("120/min"). Plain Python: the settings check it."""

from dataclasses import dataclass

_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600}
_UNITS |= {"hour": 3600, "d": 86400, "day": 86400}


@dataclass(frozen=True)
class Rate:
    requests: int
    seconds: int


def rate_parse(*, text: str) -> Rate:
    """ "120/min" -> 120 requests per 60 s. Raises ValueError for anything else."""
    count, _, unit = text.strip().partition("/")
    seconds = _UNITS.get(unit.strip().lower())
    if not count.strip().isdigit() or int(count) < 1 or seconds is None:
        raise ValueError(
            f"API_TOKEN_RATE must look like 120/min (per s, min, hour or day), not {text!r}."
        )
    return Rate(requests=int(count), seconds=seconds)
