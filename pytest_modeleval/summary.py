"""The terminal summary: score table, baseline comparison, gate verdicts and report paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .report import format_table


def write_summary(terminal: Any, document: dict[str, Any], report_paths: list[Path]) -> None:
    terminal.write_sep("=", "modeleval")
    for line in format_table(document):
        terminal.write_line(line)
    totals = document["totals"]
    if totals["errors"]:
        terminal.write_line(
            f"{totals['errors']} sample(s) ended in a server error and are not in the scores",
            yellow=True)
    for line in baseline_lines(document.get("baseline")):
        terminal.write_line(line, yellow=line.startswith("warning"))
    for gate in document.get("gates", []):
        if gate["passed"]:
            terminal.write_line(gate["message"], green=True)
        else:
            terminal.write_line(gate["message"], red=True, bold=True)
    if report_paths:
        folder = report_paths[0].parent
        names = ", ".join(path.name for path in report_paths)
        terminal.write_line(f"reports: {names} in {folder}")


def baseline_lines(baseline: dict[str, Any] | None) -> list[str]:
    """Return the baseline's warnings and one line with its pair and flip counts."""
    if baseline is None:
        return []
    lines = [f"warning: baseline: {warning}" for warning in baseline["warnings"]]
    pairs = sum(row["pairs"] for row in baseline["subsets"])
    to_wrong = sum(row["to_wrong"] for row in baseline["subsets"])
    to_correct = sum(row["to_correct"] for row in baseline["subsets"])
    lines.append(f"baseline {baseline['path']}: {pairs} paired samples, {to_wrong} "
                 f"correct->wrong, {to_correct} wrong->correct")
    return lines
