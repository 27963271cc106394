"""Summary table shared by all reports, and its plain-text rendering for the terminal."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

INTERRUPTED_NOTE = ("This run was interrupted: the report covers only the samples that "
                    "finished.")
COLUMNS = ("Model", "Dataset", "Metric", "Subset", "Num", "Score", "Cat.0")
RIGHT_ALIGNED_COLUMNS = frozenset({"Num", "Score"})
MISSING = "-"

_ZERO_WIDTH_CATEGORIES = frozenset({"Mn", "Me", "Cf", "Cc"})
_WIDE_EAST_ASIAN_WIDTHS = frozenset({"W", "F"})
# Bidirectional overrides and isolates make a terminal reorder the rest of the row.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def display_width(text: str) -> int:
    """Count the terminal columns that ``text`` occupies.

    East Asian Wide and Fullwidth characters take 2 columns. Combining marks, format
    characters and control characters take 0.
    """
    # NOTE: widths are summed per code point, so a terminal that draws an emoji ZWJ
    # sequence or decomposed Hangul jamo as one glyph uses fewer columns than counted.
    width = 0
    for char in text:
        if unicodedata.category(char) in _ZERO_WIDTH_CATEGORIES:
            continue
        if unicodedata.east_asian_width(char) in _WIDE_EAST_ASIAN_WIDTHS:
            width += 2
        else:
            width += 1
    return width


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_score(value: Any) -> str:
    """Format a score with 4 decimals, or "-" when it is missing."""
    if value is None:
        return MISSING
    if is_number(value):
        return f"{value:.4f}"
    return str(value)


def format_count(value: Any) -> str:
    """Format a sample or token count, or "-" when it is missing."""
    if value is None:
        return MISSING
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def format_text(value: Any) -> str:
    if value is None or value == "":
        return MISSING
    return str(value)


def as_dict(value: Any) -> dict[str, Any]:
    """Return ``value`` when it is a dict, else an empty dict, so malformed parts render empty."""
    return value if isinstance(value, dict) else {}


def dict_items(value: Any) -> list[dict[str, Any]]:
    """Return the dict entries of a list, skipping anything else."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def model_name(document: dict[str, Any]) -> str:
    model = document.get("model") or as_dict(document.get("config")).get("model")
    return format_text(model)


def rollup_score(rollup: dict[str, Any]) -> str:
    """Format a roll-up score, marking a roll-up that is missing some of its subsets."""
    score = rollup.get("score")
    if rollup.get("partial") and score is not None:
        return f"{format_score(score)} (partial)"
    return format_score(score)


def subset_rows(document: dict[str, Any]) -> list[list[str]]:
    """Build one summary row per subset, with cells in ``COLUMNS`` order."""
    model = model_name(document)
    rows = []
    for subset in dict_items(document.get("subsets")):
        rows.append([
            model,
            format_text(subset.get("benchmark")),
            format_text(subset.get("metric")),
            format_text(subset.get("subset")),
            format_count(subset.get("num")),
            format_score(subset.get("score")),
            format_text(subset.get("category")),
        ])
    return rows


def rollup_rows(document: dict[str, Any]) -> list[list[str]]:
    """Build one summary row per roll-up, with the roll-up name in the Subset column."""
    model = model_name(document)
    rows = []
    for rollup in dict_items(document.get("rollups")):
        rows.append([
            model,
            format_text(rollup.get("benchmark")),
            format_text(rollup.get("metric")),
            format_text(rollup.get("name")),
            format_count(rollup.get("num")),
            rollup_score(rollup),
            MISSING,
        ])
    return rows


def partial_rollup_notes(document: dict[str, Any]) -> list[str]:
    """Describe each partial roll-up and the subsets it is missing."""
    notes = []
    for rollup in dict_items(document.get("rollups")):
        if not rollup.get("partial"):
            continue
        label = f"{format_text(rollup.get('benchmark'))} {format_text(rollup.get('name'))}"
        missing = rollup.get("missing")
        if isinstance(missing, list) and missing:
            names = ", ".join(str(name) for name in missing)
            note = f"{label} is partial: missing {names}"
        else:
            note = f"{label} is partial"
        # A roll-up with several metrics has one row per metric but one note.
        if note not in notes:
            notes.append(note)
    return notes


def _terminal_text(text: str) -> str:
    """Replace characters that would break the row layout in a terminal."""
    characters = []
    for char in text:
        if char in "\r\n\t":
            characters.append(" ")
        elif unicodedata.category(char) == "Cc" or char in _BIDI_CONTROLS:
            characters.append("?")
        else:
            characters.append(char)
    return "".join(characters)


def _border(widths: list[int], fill: str) -> str:
    return "+" + "+".join(fill * (width + 2) for width in widths) + "+"


def _row_line(cells: list[str], widths: list[int]) -> str:
    parts = []
    for column, cell, width in zip(COLUMNS, cells, widths):
        padding = " " * (width - display_width(cell))
        if column in RIGHT_ALIGNED_COLUMNS:
            parts.append(f" {padding}{cell} ")
        else:
            parts.append(f" {cell}{padding} ")
    return "|" + "|".join(parts) + "|"


def _column_widths(rows: Iterable[list[str]]) -> list[int]:
    widths = [display_width(header) for header in COLUMNS]
    for row in rows:
        widths = [max(width, display_width(cell)) for width, cell in zip(widths, row)]
    return widths


def format_table(document: dict[str, Any]) -> list[str]:
    """Render the summary as ASCII table lines, followed by one line per partial roll-up.

    Subset rows come first, then a rule, then roll-up rows. Padding uses
    ``display_width`` so CJK cells keep the column separators aligned.
    """
    subsets = [[_terminal_text(cell) for cell in row] for row in subset_rows(document)]
    rollups = [[_terminal_text(cell) for cell in row] for row in rollup_rows(document)]
    widths = _column_widths([*subsets, *rollups])
    rule = _border(widths, "-")

    lines = [rule, _row_line(list(COLUMNS), widths), _border(widths, "=")]
    lines.extend(_row_line(row, widths) for row in subsets)
    if subsets and rollups:
        lines.append(rule)
    lines.extend(_row_line(row, widths) for row in rollups)
    lines.append(rule)

    lines.extend(_terminal_text(note) for note in partial_rollup_notes(document))
    return lines
