"""The Usage page's bar chart, drawn on the server as SVG (no scripts), in the style of the
admin's token-health chart: one bar per day (its numbers in its tooltip and in the table
under the chart), a date under every week."""

from typing import Any

from django.utils.dateformat import format as date_format

from common.svg_chart import BarChartShape, bar_chart

from .selectors import UsageDay

_CHART = BarChartShape(bar=18, gap=6, height=140, top=8, label=34)
# Room after the last bar for the half of today's date that sticks out past it.
_RIGHT_MARGIN = 14


def usage_chart(days: list[UsageDay], *, metric: str = "tokens") -> dict[str, Any]:
    """metric: "tokens", "tasks" or "cost"."""
    chart = bar_chart([float(getattr(day, metric)) for day in days], shape=_CHART)
    for i, (bar, day) in enumerate(zip(chart["bars"], days, strict=True)):
        bar.update(
            # A date under every seventh bar, counted back from today.
            label=date_format(day.day, "j M") if i % 7 == (len(days) - 1) % 7 else "",
            title=f"{date_format(day.day, 'l j F')}: {day.tasks} task(s), "
            f"{day.tokens:,} tokens, ${day.cost:.4f}",
        )
    chart["metric"] = metric
    chart["width"] += _RIGHT_MARGIN
    return chart
