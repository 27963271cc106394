"""Geometry of the inline SVG bar chart of subset scores with their 95 % intervals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_modeleval.report.comparison import format_interval
from pytest_modeleval.report.table import (
    dict_items,
    display_width,
    format_score,
    format_text,
    is_number,
)

# Pixel sizes of the chart. Labels sit left of the bars and scores right of them.
LABEL_WIDTH = 260
# Columns of label text that fit in LABEL_WIDTH at the chart's 12 px font, about 7 px each.
MAX_LABEL_COLUMNS = 36
BAR_AREA_WIDTH = 420
VALUE_WIDTH = 170
ROW_HEIGHT = 22
BAR_HEIGHT = 14
TOP = 8
AXIS_HEIGHT = 24
TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class Bar:
    """One subset's bar: its label, score text and pixel coordinates."""

    label: str
    # The label cut to fit left of the bars; the tooltip shows it whole.
    short_label: str
    text: str
    y: float
    width: float
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class Chart:
    """Everything the template needs to draw the chart."""

    bars: list[Bar]
    width: int
    height: int
    bar_x: int
    bar_height: int
    value_x: int
    axis_y: float
    ticks: list[tuple[float, str]]


def _x(value: float) -> float:
    """Map a score in [0, 1] to a pixel offset, clamping values outside that range."""
    return round(min(max(value, 0.0), 1.0) * BAR_AREA_WIDTH, 1)


def _chart_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the subset rows to draw: the primary metric rows with a numeric score.

    A document written before rows had a "primary" field has one metric per subset, so
    then every row is drawn.
    """
    rows = dict_items(document.get("subsets"))
    if any("primary" in row for row in rows):
        rows = [row for row in rows if row.get("primary")]
    return [row for row in rows if is_number(row.get("score"))]


def _fit(label: str) -> str:
    """Cut a label to the width left of the bars, counting wide characters twice."""
    if display_width(label) <= MAX_LABEL_COLUMNS:
        return label
    kept = ""
    for char in label:
        if display_width(kept + char) > MAX_LABEL_COLUMNS - 1:
            break
        kept += char
    return kept + "\u2026"


def build_chart(document: dict[str, Any]) -> Chart | None:
    """Lay out one horizontal bar per subset, or return None when no subset has a score."""
    rows = _chart_rows(document)
    if not rows:
        return None
    bars = []
    for index, row in enumerate(rows):
        ci = row.get("ci")
        interval = format_interval(ci)
        text = format_score(row["score"])
        low = high = None
        if interval != "-":
            low, high = _x(ci[0]), _x(ci[1])
            text = f"{text} {interval}"
        label = f"{format_text(row.get('benchmark'))}/{format_text(row.get('subset'))}"
        bars.append(Bar(
            label=label,
            short_label=_fit(label),
            text=text,
            y=TOP + index * ROW_HEIGHT,
            width=_x(row["score"]),
            ci_low=low,
            ci_high=high,
        ))
    axis_y = TOP + len(rows) * ROW_HEIGHT
    return Chart(
        bars=bars,
        width=LABEL_WIDTH + BAR_AREA_WIDTH + VALUE_WIDTH,
        height=int(axis_y + AXIS_HEIGHT),
        bar_x=LABEL_WIDTH,
        bar_height=BAR_HEIGHT,
        value_x=LABEL_WIDTH + BAR_AREA_WIDTH + 6,
        axis_y=axis_y,
        ticks=[(LABEL_WIDTH + _x(tick), f"{tick:g}") for tick in TICKS],
    )
