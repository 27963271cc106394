"""Shared helpers for tests that run the plugin through pytester."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

BENCHMARK_MODULE = Path(__file__).resolve().parents[1] / "benchmarks" / "test_bfcl_v3.py"


def add_bfcl_module(pytester: pytest.Pytester) -> None:
    """Copy the shipped BFCL benchmark module into the pytester folder."""
    pytester.makepyfile(test_bfcl_v3=BENCHMARK_MODULE.read_text(encoding="utf-8"))


def run_args(server_url: str, report_dir: Path, *extra: str) -> list[str]:
    return ["-p", "no:cacheprovider", "--model", "scripted-model", "--base-url", server_url,
            f"--report-dir={report_dir}", *extra]


def load_results(report_dir: Path) -> dict[str, Any]:
    return json.loads((report_dir / "results.json").read_text(encoding="utf-8"))


def subset_scores(document: dict[str, Any]) -> dict[str, float]:
    return {row["subset"]: row["score"] for row in document["subsets"]}
