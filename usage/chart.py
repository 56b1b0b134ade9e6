"""The Usage page's bar chart, drawn on the server as SVG (no scripts), in the style of the
admin's token-health chart: one bar per day (its numbers in its tooltip and in the table
under the chart), a date under every week."""

from typing import Any

from django.utils.dateformat import format as date_format

from .selectors import UsageDay

_BAR = 18
_GAP = 6
_HEIGHT = 140
_TOP = 8
_LABEL = 34


def usage_chart(days: list[UsageDay], *, metric: str = "tokens") -> dict[str, Any]:
    """metric: "tokens", "tasks" or "cost"."""

    def value(day: UsageDay) -> float:
        return float(getattr(day, metric))

    peak = max((value(d) for d in days), default=0) or 1
    bars = []
    for i, day in enumerate(days):
        amount = value(day)
        height = round(amount / peak * _HEIGHT) if amount else 0
        x = _GAP + i * (_BAR + _GAP)
        y = _TOP + _HEIGHT - height
        bars.append(
            {
                "x": x,
                "y": y,
                "height": height,
                "width": _BAR,
                "centre": x + _BAR // 2,
                # A date under every seventh bar, counted back from today.
                "label": date_format(day.day, "j M") if i % 7 == (len(days) - 1) % 7 else "",
                "title": f"{date_format(day.day, 'l j F')}: {day.tasks} task(s), "
                f"{day.tokens:,} tokens, ${day.cost:.4f}",
            }
        )
    baseline = _TOP + _HEIGHT
    return {
        "bars": bars,
        "width": _GAP + len(days) * (_BAR + _GAP),
        "height": baseline + _LABEL,
        "baseline": baseline,
        "label_y": baseline + 14,
        "metric": metric,
    }
