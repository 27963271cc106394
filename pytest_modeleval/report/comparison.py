"""Cells of the intervals, gate results and baseline comparison shared by Markdown and HTML.

Every field read here is optional, so a results.json written before these fields existed
still renders: its tables simply have no interval, gate or baseline rows.
"""

from __future__ import annotations

from typing import Any

from pytest_modeleval.report.table import (
    COLUMNS,
    MISSING,
    as_dict,
    dict_items,
    format_count,
    format_score,
    format_text,
    is_number,
    rollup_rows,
    subset_rows,
)

INTERVAL_COLUMN = "95 % CI"

GATE_COLUMNS = ("Gate", "Kind", "Value", "Bound", "Result", "Message")
BASELINE_COLUMNS = ("Dataset", "Subset", "Metric", "Pairs", "Baseline", "Current", "Delta",
                    "95 % CI of delta", "p", "Test", "To wrong", "To correct")
BASELINE_RIGHT_ALIGNED = frozenset({"Pairs", "Baseline", "Current", "Delta", "p", "To wrong",
                                    "To correct"})
FLIP_COLUMNS = ("Dataset", "Subset", "Sample", "Repeat", "Baseline", "Current")


def format_interval(value: Any) -> str:
    """Format a [low, high] interval with 4 decimals, or "-" when it is missing or malformed."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return MISSING
    low, high = value
    if not (is_number(low) and is_number(high)):
        return MISSING
    return f"[{low:.4f}, {high:.4f}]"


def format_delta(value: Any) -> str:
    """Format a score difference with its sign, such as ``+0.0125``."""
    return f"{value:+.4f}" if is_number(value) else MISSING


def format_p_value(value: Any) -> str:
    """Format a p-value with 3 significant digits, and very small ones as ``<0.001``."""
    if not is_number(value):
        return MISSING
    return "<0.001" if value < 0.001 else f"{value:.3g}"


def has_intervals(document: dict[str, Any]) -> bool:
    """Tell whether any subset or roll-up row carries a "ci" field, so tables need the column."""
    rows = dict_items(document.get("subsets")) + dict_items(document.get("rollups"))
    return any("ci" in row for row in rows)


def score_table(document: dict[str, Any]) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """Return the columns, subset rows and roll-up rows of the score table.

    The terminal's columns get a "95 % CI" column right after Score when any row has
    an interval.
    """
    columns = list(COLUMNS)
    subsets = subset_rows(document)
    rollups = rollup_rows(document)
    if not has_intervals(document):
        return columns, subsets, rollups
    position = columns.index("Score") + 1
    columns.insert(position, INTERVAL_COLUMN)
    for rows, key in ((subsets, "subsets"), (rollups, "rollups")):
        for row, source in zip(rows, dict_items(document.get(key))):
            row.insert(position, format_interval(source.get("ci")))
    return columns, subsets, rollups


def gate_result(gate: dict[str, Any]) -> str:
    """Return PASS or FAIL, noting a gate that passed because the change is within noise."""
    passed = gate.get("passed")
    if passed is True:
        return "PASS (within noise)" if gate.get("noise") else "PASS"
    if passed is False:
        return "FAIL"
    return MISSING


def gate_rows(document: dict[str, Any]) -> list[list[str]]:
    """Build one row per gate result, with cells in ``GATE_COLUMNS`` order."""
    rows = []
    for gate in dict_items(document.get("gates")):
        rows.append([
            format_text(gate.get("name")),
            format_text(gate.get("kind")),
            format_score(gate.get("value")),
            format_score(gate.get("bound")),
            gate_result(gate),
            format_text(gate.get("message")),
        ])
    return rows


def baseline_of(document: dict[str, Any]) -> dict[str, Any] | None:
    baseline = document.get("baseline")
    return baseline if isinstance(baseline, dict) else None


def baseline_line(baseline: dict[str, Any]) -> str:
    """Describe which run the comparison is against, as plain text."""
    return (f"Compared with {format_text(baseline.get('path'))}"
            f" (model {format_text(baseline.get('model'))},"
            f" run at {format_text(baseline.get('created_at'))}).")


def baseline_warnings(baseline: dict[str, Any]) -> list[str]:
    warnings = baseline.get("warnings")
    if not isinstance(warnings, list):
        return []
    return [format_text(warning) for warning in warnings]


def baseline_rows(baseline: dict[str, Any]) -> list[list[str]]:
    """Build one row per compared subset and metric, with cells in ``BASELINE_COLUMNS`` order."""
    rows = []
    for row in dict_items(baseline.get("subsets")):
        rows.append([
            format_text(row.get("benchmark")),
            format_text(row.get("subset")),
            format_text(row.get("metric")),
            format_count(row.get("pairs")),
            format_score(row.get("baseline")),
            format_score(row.get("current")),
            format_delta(row.get("delta")),
            format_interval(row.get("ci")),
            format_p_value(row.get("p_value")),
            format_text(row.get("test")),
            format_count(row.get("to_wrong")),
            format_count(row.get("to_correct")),
        ])
    return rows


def flips(baseline: dict[str, Any]) -> list[dict[str, Any]]:
    return dict_items(baseline.get("flips"))


def flip_row(flip: dict[str, Any]) -> list[str]:
    """Build the cells of one flip in ``FLIP_COLUMNS`` order."""
    return [
        format_text(flip.get("benchmark")),
        format_text(flip.get("subset")),
        format_text(flip.get("sample_id")),
        format_count(flip.get("repeat")),
        format_text(flip.get("from")),
        format_text(flip.get("to")),
    ]


def flip_reply(value: Any) -> str:
    """Return a flip's reply text; a structured reply shows its content or its tool calls."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, str):
        return value
    reply = as_dict(value)
    if isinstance(reply.get("content"), str) and reply["content"]:
        return reply["content"]
    return format_text(reply.get("tool_calls") if reply else value)
