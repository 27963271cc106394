"""Markdown report: run summary, score table, gates, baseline comparison and sample counts."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pytest_modeleval.report.comparison import (
    BASELINE_COLUMNS,
    BASELINE_RIGHT_ALIGNED,
    FLIP_COLUMNS,
    GATE_COLUMNS,
    baseline_line,
    baseline_of,
    baseline_rows,
    baseline_warnings,
    flip_reply,
    flip_row,
    flips,
    gate_rows,
    score_table,
)
from pytest_modeleval.report.table import (
    INTERRUPTED_NOTE,
    RIGHT_ALIGNED_COLUMNS,
    as_dict,
    dict_items,
    format_count,
    format_score,
    format_text,
    is_number,
    model_name,
    partial_rollup_notes,
)

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# GitHub shows at most 1 MiB of a step summary, so the Markdown lists only the first
# flips. report.html and results.json list all of them.
MAX_MARKDOWN_FLIPS = 50


def escape_markdown(value: Any) -> str:
    """Escape text for a GitHub-flavoured Markdown table cell or inline text.

    Backslash-escaping ``<`` keeps data from opening HTML tags or autolinks, and
    escaping ``|`` keeps it from splitting a table cell.
    """
    text = str(value)
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "\\<")
    return _LINE_BREAK.sub("<br>", text)


def url_host(url: Any) -> str | None:
    """Return ``host[:port]`` of a URL, without user info, path or query, or None if unparsable."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    return host if port is None else f"{host}:{port}"


def redact_url(url: str) -> str:
    """Drop user info, query and fragment from a URL. Other strings are returned unchanged."""
    host = url_host(url)
    if host is None:
        return url
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{host}{parts.path}"


def format_bound(op: Any, bound: Any) -> str:
    """Format a threshold comparison such as ``>= 0.9``."""
    bound_text = f"{bound:g}" if is_number(bound) else format_text(bound)
    return f"{format_text(op)} {bound_text}"


def threshold_result(threshold: dict[str, Any]) -> str:
    passed = threshold.get("passed")
    if passed is True:
        return "PASS"
    if passed is False:
        return "FAIL"
    return "-"


def _table(
    headers: list[str], right_aligned: set[str] | frozenset[str], rows: list[list[str]]
) -> list[str]:
    alignments = ["---:" if header in right_aligned else "---" for header in headers]
    lines = [
        "| " + " | ".join(escape_markdown(header) for header in headers) + " |",
        "| " + " | ".join(alignments) + " |",
    ]
    for row in rows:
        lines.append("| " + " | ".join(escape_markdown(cell) for cell in row) + " |")
    return lines


def _run_line(document: dict[str, Any]) -> str:
    totals = as_dict(document.get("totals"))
    host = url_host(as_dict(document.get("config")).get("base_url"))
    wall_s = totals.get("wall_s")
    wall = f"{wall_s:.1f} s" if is_number(wall_s) else "-"
    return (
        f"Run {escape_markdown(format_text(document.get('created_at')))}"
        f" against {escape_markdown(format_text(host))}:"
        f" {format_count(totals.get('samples'))} samples,"
        f" {format_count(totals.get('errors'))} errors,"
        f" wall time {wall}."
    )


def _versions_line(document: dict[str, Any]) -> list[str]:
    versions = as_dict(document.get("versions"))
    if not versions:
        return []
    parts = [f"{escape_markdown(name)} {escape_markdown(format_text(version))}"
             for name, version in versions.items()]
    return ["", "Versions: " + ", ".join(parts) + "."]


def _scores_section(document: dict[str, Any]) -> list[str]:
    columns, subsets, rollups = score_table(document)
    lines = ["## Scores", ""]
    lines.extend(_table(columns, RIGHT_ALIGNED_COLUMNS, subsets + rollups))
    lines.extend(["", "Roll-up rows follow the subset rows and have no Cat.0 value."])
    return lines


def _partial_section(document: dict[str, Any]) -> list[str]:
    notes = partial_rollup_notes(document)
    if not notes:
        return []
    lines = ["", "### Partial roll-ups", ""]
    lines.append("These roll-ups have no score because some of their subsets did not run; "
                 "a score over part of them would not be comparable with published results.")
    lines.append("")
    lines.extend(f"- {escape_markdown(note)}" for note in notes)
    return lines


def _thresholds_section(document: dict[str, Any]) -> list[str]:
    thresholds = dict_items(document.get("thresholds"))
    if not thresholds:
        return []
    rows = [
        [
            format_text(threshold.get("expression")),
            format_score(threshold.get("value")),
            format_bound(threshold.get("op"), threshold.get("bound")),
            threshold_result(threshold),
        ]
        for threshold in thresholds
    ]
    lines = ["", "## Thresholds", ""]
    lines.extend(_table(["Threshold", "Value", "Bound", "Result"], {"Value"}, rows))
    return lines


def _gates_section(document: dict[str, Any]) -> list[str]:
    """Render the gate results, or the thresholds of a document written without gates."""
    rows = gate_rows(document)
    if not rows:
        return _thresholds_section(document)
    failed = sum(row[4] == "FAIL" for row in rows)
    verdict = f"{failed} of {len(rows)} gates failed." if failed else "All gates passed."
    lines = ["", "## Gates", "", verdict, ""]
    lines.extend(_table(list(GATE_COLUMNS), {"Value", "Bound"}, rows))
    return lines


def _baseline_section(document: dict[str, Any]) -> list[str]:
    baseline = baseline_of(document)
    if baseline is None:
        return []
    lines = ["", "## Baseline comparison", "", escape_markdown(baseline_line(baseline))]
    for warning in baseline_warnings(baseline):
        lines.extend(["", f"> Warning: {escape_markdown(warning)}"])
    lines.append("")
    lines.extend(_table(list(BASELINE_COLUMNS), BASELINE_RIGHT_ALIGNED, baseline_rows(baseline)))
    lines.extend(_flips_section(flips(baseline)))
    return lines


# Characters of each reply shown in a flip row; report.html shows them whole.
MAX_FLIP_REPLY_TEXT = 120


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_FLIP_REPLY_TEXT else line[:MAX_FLIP_REPLY_TEXT] + "..."


def _flips_section(all_flips: list[dict[str, Any]]) -> list[str]:
    lines = ["", f"### Flips ({len(all_flips)})", ""]
    if not all_flips:
        lines.append("No sample changed between correct and wrong.")
        return lines
    listed = all_flips[:MAX_MARKDOWN_FLIPS]
    columns = [*FLIP_COLUMNS, "Baseline reply", "Current reply"]
    rows = [[*flip_row(flip), _short(flip_reply(flip.get("baseline_reply"))),
             _short(flip_reply(flip.get("current_reply")))] for flip in listed]
    lines.extend(_table(columns, {"Repeat"}, rows))
    if len(all_flips) > len(listed):
        lines.extend(["", f"{len(all_flips) - len(listed)} more flips are listed in "
                          "report.html and results.json."])
    return lines


def _samples_section(document: dict[str, Any]) -> list[str]:
    totals = as_dict(document.get("totals"))
    lines = ["", "## Samples", ""]
    for label, key in (
        ("Samples", "samples"),
        ("Correct", "correct"),
        ("Wrong", "wrong"),
        ("Errors", "errors"),
        ("Unscored", "unscored"),
        ("Prompt tokens", "prompt_tokens"),
        ("Completion tokens", "completion_tokens"),
    ):
        lines.append(f"- {label}: {escape_markdown(format_count(totals.get(key)))}")
    latency = totals.get("mean_latency_s")
    lines.append(f"- Mean latency: {f'{latency:.3f} s' if is_number(latency) else '-'}")
    return lines


def render_markdown(document: dict[str, Any]) -> str:
    """Render the results document as a GitHub-flavoured Markdown report."""
    title = f"# modeleval report: {escape_markdown(model_name(document))}"
    lines = [title, "", _run_line(document)]
    if document.get("interrupted"):
        lines.extend(["", f"**{INTERRUPTED_NOTE}**"])
    lines.extend(_versions_line(document))
    lines.append("")
    lines.extend(_scores_section(document))
    lines.extend(_partial_section(document))
    lines.extend(_gates_section(document))
    lines.extend(_baseline_section(document))
    lines.extend(_samples_section(document))
    return "\n".join(lines) + "\n"
