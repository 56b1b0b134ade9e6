"""Durations on pages in human units: {{ ms|duration_ms }}, {{ s|duration_s }} and
{% duration_between start end %} ("23 s", "11 min 12 s"), never raw milliseconds."""

from datetime import datetime

from django import template
from django.utils import timezone

from common.humanize import duration_words

register = template.Library()


@register.filter
def duration_ms(milliseconds: float | None) -> str:
    return duration_words(None if milliseconds is None else milliseconds / 1000)


@register.filter
def duration_s(seconds: float | None) -> str:
    return duration_words(seconds)


@register.simple_tag
def duration_between(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return ""
    return duration_words((end - start).total_seconds())


@register.simple_tag
def duration_until(moment: datetime | None) -> str:
    """The time left until `moment` ("0 s" once it has passed)."""
    if moment is None:
        return ""
    return duration_words(max(0, round((moment - timezone.now()).total_seconds())))


@register.filter
def ago(moment: datetime | None) -> str:
    """ "27 s ago", "11 min 12 s ago" ("" for no moment)."""
    if moment is None:
        return ""
    return f"{duration_words(max(0, round((timezone.now() - moment).total_seconds())))} ago"
