"""Bar charts drawn on the server as SVG (no scripts, nothing inline for the CSP): the geometry
only. Callers add what each bar says (labels, tooltips); templates draw rects and texts."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BarChartShape:
    bar: int  # bar width, px
    gap: int  # space before each bar, px
    height: int  # height of the tallest bar, px
    top: int  # room above the tallest bar (e.g. for its count)
    label: int  # room under the bars for day labels


def bar_chart(values: Sequence[float], *, shape: BarChartShape) -> dict[str, Any]:
    """Bars scaled to the largest value (an all-zero chart draws flat bars), left to right."""
    peak = max(values, default=0) or 1
    baseline = shape.top + shape.height
    bars = []
    for i, amount in enumerate(values):
        height = round(amount / peak * shape.height) if amount else 0
        x = shape.gap + i * (shape.bar + shape.gap)
        bars.append(
            {
                "x": x,
                "y": baseline - height,
                "height": height,
                "width": shape.bar,
                "centre": x + shape.bar // 2,
            }
        )
    return {
        "bars": bars,
        "width": shape.gap + len(values) * (shape.bar + shape.gap),
        "height": baseline + shape.label,
        "baseline": baseline,
        "label_y": baseline + 14,
        "label2_y": baseline + 28,
    }
