"""The terminal summary: score table, threshold verdicts and report paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .gates import describe_failure
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
    for row in document["thresholds"]:
        if row["passed"]:
            terminal.write_line(f"threshold passed: {row['expression']} "
                                f"(measured {row['value']:.4f})", green=True)
        else:
            terminal.write_line(describe_failure(row), red=True, bold=True)
    if report_paths:
        folder = report_paths[0].parent
        names = ", ".join(path.name for path in report_paths)
        terminal.write_line(f"reports: {names} in {folder}")
