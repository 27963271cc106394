"""Renderers that turn the results document into results.json, report.md and report.html."""

from __future__ import annotations

import itertools
import json
import os
import uuid
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pytest_modeleval.report.html import render_html, render_html_chunks
from pytest_modeleval.report.markdown import render_markdown
from pytest_modeleval.report.table import display_width, format_table

__all__ = ["display_width", "format_table", "render_html", "render_markdown", "write_reports"]

RESULTS_NAME = "results.json"
MARKDOWN_NAME = "report.md"
HTML_NAME = "report.html"
# GitHub Actions sets this to a file whose Markdown it shows on the run's summary page.
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def write_reports(document: dict[str, Any], report_dir: Path) -> list[Path]:
    """Write results.json, report.md and report.html into ``report_dir``, creating it if needed.

    results.json is written first, so it exists even when a renderer raises. When
    ``$GITHUB_STEP_SUMMARY`` names a file, report.md is also appended to it.
    Returns the three paths in that order.
    """
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)

    # Both large files are written piece by piece: joining a full run's
    # JSON or HTML in memory first would take a few hundred MB at the end.
    results_path = report_dir / RESULTS_NAME
    encoder = json.JSONEncoder(ensure_ascii=False, indent=2)
    _write_atomic(results_path, itertools.chain(encoder.iterencode(document), ["\n"]))
    markdown_path = report_dir / MARKDOWN_NAME
    markdown = render_markdown(document)
    _write_atomic(markdown_path, [markdown])
    html_path = report_dir / HTML_NAME
    _write_atomic(html_path, render_html_chunks(document))
    append_step_summary(markdown)
    return [results_path, markdown_path, html_path]


def append_step_summary(markdown: str) -> Path | None:
    """Append ``markdown`` to the file that ``$GITHUB_STEP_SUMMARY`` names, if it is set.

    An empty value counts as unset, so a workflow step can skip the summary with
    ``GITHUB_STEP_SUMMARY= command``. A failed write emits a RuntimeWarning and does
    not raise, because the reports themselves are already written. A warning, not a log
    record, because pytest lists warnings in its summary and the CLI prints them.
    Returns the path written to, or None.
    """
    target = os.environ.get(STEP_SUMMARY_ENV)
    if not target:
        return None
    path = Path(target)
    try:
        with path.open("a", encoding="utf-8", newline="") as stream:
            # A blank line keeps this report apart from what earlier steps appended.
            stream.write("\n" + markdown)
    except OSError as error:
        warnings.warn(f"could not append report.md to ${STEP_SUMMARY_ENV} ({path}): {error}; "
                      "the reports in the report folder are complete", RuntimeWarning,
                      stacklevel=2)
        return None
    return path


def _write_atomic(path: Path, chunks: Iterable[str]) -> None:
    """Write ``chunks`` as UTF-8 through a temporary file that replaces ``path`` when complete."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    # os.open with mode 0o666 lets the umask set the permissions, as open() would.
    # tempfile.mkstemp would create a report that only its owner can read.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(descriptor, "w", encoding="utf-8", newline="") as stream:
            for chunk in chunks:
                stream.write(chunk)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
