"""Thresholds: check measured subset and roll-up scores against bounds."""

from __future__ import annotations

import operator
from typing import Any

from .options import Threshold
from .suites import SUITE_MODULES, get_suite

_COMPARE = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
            "==": operator.eq}


def validate_threshold(threshold: Threshold) -> str | None:
    """Return an error message when the threshold names no target of a built-in benchmark.

    Other benchmark names may be a user's own benchmark, known only after
    collection; a threshold on one that does not run fails as not measured.
    """
    if threshold.benchmark not in SUITE_MODULES:
        return None
    suite = get_suite(threshold.benchmark)
    targets = suite.subsets + suite.rollup_names
    if threshold.target not in targets:
        return (f"invalid threshold {threshold.expression!r}: unknown subset or roll-up "
                f"{threshold.target!r} of {threshold.benchmark}; valid: {', '.join(targets)}")
    return None


def evaluate_thresholds(thresholds: tuple[Threshold, ...], document: dict[str, Any]
                        ) -> list[dict[str, Any]]:
    """Return one result row per threshold; a target without a score fails."""
    measured = _measured_scores(document)
    rows = []
    for threshold in thresholds:
        value, note = measured.get((threshold.benchmark, threshold.target), (None, "did not run"))
        passed = value is not None and _COMPARE[threshold.op](value, threshold.bound)
        rows.append({
            "expression": threshold.expression, "benchmark": threshold.benchmark,
            "target": threshold.target, "op": threshold.op, "bound": threshold.bound,
            "value": value, "passed": passed, "note": "" if value is not None else note,
        })
    return rows


def _measured_scores(document: dict[str, Any]) -> dict[tuple[str, str], tuple[float | None, str]]:
    measured: dict[tuple[str, str], tuple[float | None, str]] = {}
    # A subset or roll-up with several metrics is gated on its first one.
    for row in document["subsets"]:
        note = "" if row["score"] is not None else "no scored sample"
        measured.setdefault((row["benchmark"], row["subset"]), (row["score"], note))
    for row in document["rollups"]:
        note = f"partial: missing {', '.join(row['missing'])}" if row["partial"] else ""
        measured.setdefault((row["benchmark"], row["name"]), (row["score"], note))
    return measured


def describe_failure(row: dict[str, Any]) -> str:
    target = f"{row['benchmark']}/{row['target']}"
    if row["value"] is None:
        return f"threshold failed: {row['expression']} ({target} not measured: {row['note']})"
    return (f"threshold failed: {row['expression']} (measured {row['value']:.4f}, "
            f"bound {row['op']} {row['bound']:g})")
