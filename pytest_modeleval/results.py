"""Per-sample records and their aggregation into the results document."""

from __future__ import annotations

import datetime
import platform
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from . import __version__
from .suites import SUITE_MODULES, Outcome, SubsetScore, get_suite

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


def build_document(samples: list[dict[str, Any]], config: dict[str, Any], wall_s: float
                   ) -> dict[str, Any]:
    """Aggregate sample records into the results document (subsets, roll-ups, totals)."""
    scores = subset_scores(samples)
    benchmarks = sorted({benchmark for benchmark, _ in scores}, key=_suite_order)
    return {
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": config.get("model"),
        "config": config,
        "versions": _versions(benchmarks),
        "subsets": _subset_rows(samples, scores, benchmarks),
        "rollups": _rollup_rows(scores, benchmarks),
        "thresholds": [],
        "totals": _totals(samples, wall_s),
        "samples": samples,
    }


def _subset_rows(samples: list[dict[str, Any]], scores: dict[tuple[str, str], SubsetScore],
                 benchmarks: list[str]) -> list[dict[str, Any]]:
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    categories: dict[tuple[str, str], str] = {}
    for sample in samples:
        key = (sample["benchmark"], sample["subset"])
        counts[key][sample["outcome"]] += 1
        categories[key] = sample["category"]
    rows = []
    for benchmark in benchmarks:
        order = get_suite(benchmark).subsets
        for subset in sorted((s for b, s in scores if b == benchmark),
                             key=lambda s: order.index(s) if s in order else len(order)):
            key = (benchmark, subset)
            count = counts[key]
            rows.append({
                "benchmark": benchmark, "subset": subset, "metric": "accuracy",
                "num": scores[key].num, "score": scores[key].mean,
                "category": categories[key], "correct": count["correct"],
                "wrong": count["wrong"], "errors": count["error"], "unscored": count["unscored"],
            })
    return rows


def _rollup_rows(scores: dict[tuple[str, str], SubsetScore], benchmarks: list[str]
                 ) -> list[dict[str, Any]]:
    rows = []
    for benchmark in benchmarks:
        own = {subset: score for (b, subset), score in scores.items() if b == benchmark}
        for rollup in get_suite(benchmark).rollups(own):
            rows.append({"benchmark": benchmark, "name": rollup.name, "metric": "accuracy",
                         "num": rollup.num, "score": rollup.score, "partial": rollup.partial,
                         "missing": list(rollup.missing)})
    return rows


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


def _versions(benchmarks: list[str]) -> dict[str, str]:
    versions = {"pytest_modeleval": __version__, "python": platform.python_version()}
    for benchmark in benchmarks:
        versions.update(get_suite(benchmark).version())
    return versions


def _suite_order(name: str) -> tuple[int, str]:
    names = list(SUITE_MODULES)
    return (names.index(name) if name in names else len(names), name)
