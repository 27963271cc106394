"""Per-sample records and their aggregation into the results document."""

from __future__ import annotations

import datetime
import platform
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from . import __version__
from .stats import Estimate, combine, estimate, normal_interval
from .suites import SUITE_MODULES, Outcome, Rollup, SubsetScore, Suite, accuracy, get_suite

SCHEMA_VERSION = 1
# Key of the record in `report.user_properties`, which xdist carries to the controller.
RECORD_PROPERTY = "modeleval_record"


@dataclass(frozen=True)
class SampleRecord:
    """Measurements of one item; `to_dict` gives the builtins stored in results.json."""

    benchmark: str
    subset: str
    sample_id: str
    repeat: int
    outcome: Outcome
    score: float | None
    category: str
    latency_s: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    explanation: str
    reply: dict[str, Any] | None
    # Multi-turn samples: each turn's query and steps (reply, calls, results).
    transcript: list[dict[str, Any]] | None = None
    # What the benchmark's metrics read besides the score: the judge's verdict
    # and reply, the extracted answer.
    details: dict[str, Any] | None = None
    # The prompt messages (each cut to 2,000 characters) and tool names sent.
    request: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def subset_scores(samples: list[dict[str, Any]]) -> dict[tuple[str, str], SubsetScore]:
    """Sum scored samples per (benchmark, subset); errors and unscored ones are left out."""
    num: dict[tuple[str, str], int] = defaultdict(int)
    total: dict[tuple[str, str], float] = defaultdict(float)
    for sample in samples:
        key = (sample["benchmark"], sample["subset"])
        num.setdefault(key, 0)
        if sample["outcome"] in ("correct", "wrong") and sample["score"] is not None:
            num[key] += 1
            total[key] += sample["score"]
    return {key: SubsetScore(num[key], total[key]) for key in num}


def build_document(samples: list[dict[str, Any]], config: dict[str, Any], wall_s: float,
                   versions: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """Aggregate sample records into the results document (subsets, roll-ups, totals).

    `versions` maps each benchmark to the versions of its data and scorer.
    Each subset and roll-up row has "stderr" and "ci" ([low, high], 95 %),
    both None where no interval is defined (see `_row_interval`). "baseline"
    and "gates" are filled in by the caller, once gates are evaluated.
    """
    scores = subset_scores(samples)
    benchmarks = sorted({benchmark for benchmark, _ in scores}, key=_suite_order)
    by_subset: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for sample in samples:
        by_subset[(sample["benchmark"], sample["subset"])].append(sample)
    return {
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": config.get("model"),
        "config": config,
        "versions": _versions(benchmarks, versions or {}),
        "subsets": _subset_rows(by_subset, benchmarks, config),
        "rollups": _rollup_rows(scores, by_subset, benchmarks, config),
        "thresholds": [],
        "baseline": None,
        "gates": [],
        "totals": _totals(samples, wall_s),
        "samples": samples,
    }


def _subset_rows(by_subset: dict[tuple[str, str], list[dict[str, Any]]],
                 benchmarks: list[str], config: dict[str, Any]) -> list[dict[str, Any]]:
    """Build one row per subset and metric, a benchmark's rows grouped by metric.

    The first metric of a subset is its score, the one thresholds check.
    """
    rows = []
    for benchmark in benchmarks:
        suite = _suite(benchmark)
        order = suite.subsets if suite is not None else ()
        # Subsets the suite does not list (all of a user's benchmark) go by name,
        # so that the order does not depend on which xdist worker finished first.
        subsets = sorted((s for b, s in by_subset if b == benchmark),
                         key=lambda s: (order.index(s) if s in order else len(order), s))
        per_metric: dict[str, list[dict[str, Any]]] = {}
        for subset in subsets:
            records = by_subset[(benchmark, subset)]
            metrics = suite.metrics(records, config) if suite is not None else accuracy(records)
            base = _subset_counts(benchmark, subset, records)
            scored = _scored(records, lambda record: record["sample_id"])
            for index, (metric, value) in enumerate(metrics):
                per_metric.setdefault(metric, []).append(
                    {**base, "metric": metric, "score": value, "primary": index == 0,
                     **_row_interval(estimate(scored), value)})
        for metric_rows in per_metric.values():
            rows.extend(metric_rows)
    return rows


def _subset_counts(benchmark: str, subset: str, records: list[dict[str, Any]]
                   ) -> dict[str, Any]:
    count: dict[str, int] = defaultdict(int)
    for record in records:
        count[record["outcome"]] += 1
    scored = count["correct"] + count["wrong"]
    return {"benchmark": benchmark, "subset": subset, "num": scored,
            "category": records[-1]["category"], "correct": count["correct"],
            "wrong": count["wrong"], "errors": count["error"], "unscored": count["unscored"]}


def _rollup_rows(scores: dict[tuple[str, str], SubsetScore],
                 by_subset: dict[tuple[str, str], list[dict[str, Any]]],
                 benchmarks: list[str], config: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for benchmark in benchmarks:
        own = {subset: score for (b, subset), score in scores.items() if b == benchmark}
        records = [r for (b, _), group in by_subset.items() if b == benchmark for r in group]
        suite = _suite(benchmark)
        rollups = (suite.rollups(own, records, config) if suite is not None
                   else [_overall(own)])
        intervals = _rollup_intervals(suite, own, by_subset, benchmark, rollups)
        for rollup in rollups:
            rows.append({"benchmark": benchmark, "name": rollup.name, "metric": rollup.metric,
                         "num": rollup.num, "score": rollup.score, "partial": rollup.partial,
                         "missing": list(rollup.missing),
                         **intervals.get((rollup.name, rollup.metric), _NO_INTERVAL)})
    return rows


_NO_INTERVAL: dict[str, Any] = {"stderr": None, "ci": None}


def _scored(records: list[dict[str, Any]], problem: Any) -> list[tuple[Any, float]]:
    """Return (problem key, score) of the records that count in a score."""
    return [(problem(record), float(record["score"])) for record in records
            if record["outcome"] in ("correct", "wrong") and record["score"] is not None]


def _row_interval(found: Estimate | None, value: float | None) -> dict[str, Any]:
    """Return the row's "stderr" and "ci" when its value is the mean of the sample scores.

    Metrics that are not such a mean (SimpleQA's is_incorrect and F-score,
    AIME's pass@k and majority vote) get None: their sample scores do not
    measure them.
    """
    if found is None or value is None or abs(found.mean - value) > 1e-9:
        return dict(_NO_INTERVAL)
    return {"stderr": found.stderr, "ci": list(found.ci) if found.ci else None}


def _rollup_intervals(suite: Suite | None, own: dict[str, SubsetScore],
                      by_subset: dict[tuple[str, str], list[dict[str, Any]]], benchmark: str,
                      rollups: list[Rollup]) -> dict[tuple[str, str], dict[str, Any]]:
    """Return "stderr" and "ci" per (roll-up name, metric).

    A roll-up that is a fixed linear combination of subset means (BFCL's,
    given by the suite's `rollup_weights`) gets SE = sqrt(sum((w * SE_subset) ** 2)),
    since subsets share no problem, and a normal interval. Any other roll-up
    gets an interval only when its value is the mean of all its sample scores.
    """
    parts = {subset: found for (b, subset), records in by_subset.items() if b == benchmark
             if (found := estimate(_scored(records, lambda r: r["sample_id"]))) is not None}
    weights_of = getattr(suite, "rollup_weights", None)
    weights = weights_of(own) if weights_of is not None else {}
    pooled = estimate([item for (b, subset), records in by_subset.items() if b == benchmark
                       for item in _scored(records, lambda r: (r["subset"], r["sample_id"]))])
    intervals: dict[tuple[str, str], dict[str, Any]] = {}
    for rollup in rollups:
        key = (rollup.name, rollup.metric)
        if rollup.name in weights and rollup.score is not None:
            stderr = combine(weights[rollup.name], parts)
            ci = normal_interval(rollup.score, stderr) if stderr is not None else None
            intervals[key] = {"stderr": stderr, "ci": list(ci) if ci else None}
        else:
            intervals[key] = _row_interval(pooled, rollup.score)
    return intervals


def _overall(subsets: dict[str, SubsetScore]) -> Rollup:
    """Sample-weighted accuracy over all subsets, the roll-up of a user's benchmark."""
    num = sum(score.num for score in subsets.values())
    total = sum(score.total for score in subsets.values())
    return Rollup("OVERALL", total / num if num else None, num)


def _totals(samples: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    latencies = [s["latency_s"] for s in samples if s["latency_s"] is not None]
    return {
        "samples": len(samples),
        "correct": sum(s["outcome"] == "correct" for s in samples),
        "wrong": sum(s["outcome"] == "wrong" for s in samples),
        "errors": sum(s["outcome"] == "error" for s in samples),
        "unscored": sum(s["outcome"] == "unscored" for s in samples),
        "prompt_tokens": sum(s["prompt_tokens"] or 0 for s in samples),
        "completion_tokens": sum(s["completion_tokens"] or 0 for s in samples),
        "mean_latency_s": sum(latencies) / len(latencies) if latencies else None,
        "wall_s": round(wall_s, 3),
    }


def _versions(benchmarks: list[str], loaded: dict[str, dict[str, str]]) -> dict[str, str]:
    versions = {"pytest_modeleval": __version__, "python": platform.python_version()}
    for benchmark in benchmarks:
        versions.update(loaded.get(benchmark, {}))
    return versions


def _suite(benchmark: str) -> Suite | None:
    """Return a built-in benchmark's suite, or None for a user's benchmark."""
    return get_suite(benchmark) if benchmark in SUITE_MODULES else None


def _suite_order(name: str) -> tuple[int, str]:
    names = list(SUITE_MODULES)
    return (names.index(name) if name in names else len(names), name)
