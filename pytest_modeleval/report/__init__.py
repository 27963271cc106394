"""Renderers that turn the results document into results.json, report.md and report.html."""

from __future__ import annotations

import itertools
import json
import os
import uuid
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


def write_reports(document: dict[str, Any], report_dir: Path) -> list[Path]:
    """Write results.json, report.md and report.html into ``report_dir``, creating it if needed.

    results.json is written first, so it exists even when a renderer raises.
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
    _write_atomic(markdown_path, [render_markdown(document)])
    html_path = report_dir / HTML_NAME
    _write_atomic(html_path, render_html_chunks(document))
    return [results_path, markdown_path, html_path]


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
