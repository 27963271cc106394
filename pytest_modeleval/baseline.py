"""Baseline comparison: pair this run's samples with an earlier run's, per subset.

Samples pair by (benchmark, subset, sample_id, repeat); only samples scored
in both runs (correct or wrong) count. Each subset gets the delta of the
paired means with a paired test:

- exact McNemar when every problem has one paired sample scored 0 or 1;
- otherwise (repeats, partial credit) a paired bootstrap over problems,
  with the per-problem mean difference as the unit (see stats.paired_bootstrap).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from .stats import mcnemar_exact, paired_bootstrap, paired_difference_interval

# Settings that change what the model replies or how replies are graded.
MODEL_SETTINGS = ("gen", "bfcl_mode", "bfcl_underscore_to_dot", "repeats", "judge",
                  "judge_templates")
# Version entries that may differ without changing a score.
IGNORED_VERSIONS = frozenset({"python"})
REPLY_CHARS = 2000  # a flip's reply is cut to this many characters, as transcripts are

SampleKey = tuple[str, str, str, int]


class BaselineError(ValueError):
    """The baseline file cannot be used; the message names the file and the fix."""


def load_baseline(path: str | Path) -> dict[str, Any]:
    """Read a results.json written by an earlier run; raise BaselineError if it is not one."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"--baseline {path}: file not found; pass the results.json of "
                            "an earlier run") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise BaselineError(f"--baseline {path}: cannot read it ({error}); pass the "
                            "results.json of an earlier run") from None
    if not isinstance(document, dict) or not isinstance(document.get("samples"), list):
        raise BaselineError(f"--baseline {path} is not a pytest-modeleval results.json "
                            "(no samples list); pass the results.json of an earlier run")
    for index, sample in enumerate(document["samples"]):
        problem = _sample_problem(sample)
        if problem:
            raise BaselineError(f"--baseline {path}: sample {index} {problem}; pass the "
                                "results.json of an earlier run, unedited")
    return document


def _sample_problem(sample: Any) -> str:
    """Say what makes a baseline sample unusable, or return "" when it is fine."""
    if not isinstance(sample, dict):
        return f"is {type(sample).__name__}, not an object"
    for name in ("benchmark", "subset", "sample_id", "outcome"):
        if not isinstance(sample.get(name), str):
            return f"has no text field {name!r}"
    score = sample.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
        return f"has score {score!r}, not a number"
    if not isinstance(sample.get("repeat", 0), int):
        return f"has repeat {sample.get('repeat')!r}, not an integer"
    return ""


def compare(current: dict[str, Any], baseline: dict[str, Any], path: str) -> dict[str, Any]:
    """Build the document's "baseline" section: per-subset deltas, flips and warnings."""
    now, before = _scored_samples(current), _scored_samples(baseline)
    subsets = _subset_order(current, baseline)
    metrics = {(row["benchmark"], row["subset"]): row["metric"]
               for row in current["subsets"] if row.get("primary")}
    rows = []
    for benchmark, subset in subsets:
        keys = [key for key in now if key[:2] == (benchmark, subset) and key in before]
        if keys:
            rows.append(_subset_row(benchmark, subset, metrics.get((benchmark, subset),
                                                                   "accuracy"),
                                    keys, now, before))
    return {
        "path": path,
        "model": baseline.get("model"),
        "created_at": baseline.get("created_at"),
        "warnings": _warnings(current, baseline, subsets, now, before),
        "subsets": rows,
        "flips": _flips(now, before),
    }


def _scored_samples(document: dict[str, Any]) -> dict[SampleKey, dict[str, Any]]:
    scored = {}
    for sample in document.get("samples", []):
        if sample.get("outcome") in ("correct", "wrong") and sample.get("score") is not None:
            key = (sample["benchmark"], sample["subset"], str(sample["sample_id"]),
                   int(sample.get("repeat") or 0))
            scored[key] = sample
    return scored


def _subset_order(current: dict[str, Any], baseline: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the subsets of both runs: this run's order first, then the baseline's."""
    order: dict[tuple[str, str], None] = {}
    for document in (current, baseline):
        for row in document.get("subsets", []):
            order.setdefault((row["benchmark"], row["subset"]), None)
        for sample in document.get("samples", []):
            order.setdefault((sample["benchmark"], sample["subset"]), None)
    return list(order)


def _subset_row(benchmark: str, subset: str, metric: str, keys: list[SampleKey],
                now: dict[SampleKey, dict[str, Any]], before: dict[SampleKey, dict[str, Any]]
                ) -> dict[str, Any]:
    by_problem: dict[str, list[tuple[float, float]]] = defaultdict(list)
    to_wrong = to_correct = 0
    for key in keys:
        old, new = before[key], now[key]
        by_problem[key[2]].append((float(old["score"]), float(new["score"])))
        to_wrong += old["outcome"] == "correct" and new["outcome"] == "wrong"
        to_correct += old["outcome"] == "wrong" and new["outcome"] == "correct"
    pairs = [pair for group in by_problem.values() for pair in group]
    baseline_mean = sum(old for old, _ in pairs) / len(pairs)
    current_mean = sum(new for _, new in pairs) / len(pairs)
    differences = [sum(new - old for old, new in group) / len(group)
                   for group in by_problem.values()]
    binary = all(len(group) == 1 for group in by_problem.values()) and all(
        old in (0.0, 1.0) and new in (0.0, 1.0) for old, new in pairs)
    if binary:
        test = "mcnemar"
        # McNemar counts score changes; outcomes and scores agree for 0/1 scores.
        worse = sum(old > new for old, new in pairs)
        better = sum(old < new for old, new in pairs)
        p_value = mcnemar_exact(worse, better)
        ci = paired_difference_interval(differences)
    else:
        test = "bootstrap"
        p_value, ci = paired_bootstrap(differences)
    return {"benchmark": benchmark, "subset": subset, "metric": metric, "pairs": len(pairs),
            "baseline": baseline_mean, "current": current_mean,
            "delta": current_mean - baseline_mean, "ci": list(ci) if ci else None,
            "p_value": p_value, "test": test, "to_wrong": to_wrong, "to_correct": to_correct}


def _flips(now: dict[SampleKey, dict[str, Any]], before: dict[SampleKey, dict[str, Any]]
           ) -> list[dict[str, Any]]:
    """Return the paired samples whose outcome changed between correct and wrong."""
    flips = []
    for key, new in now.items():
        old = before.get(key)
        if old is None or old["outcome"] == new["outcome"]:
            continue
        flips.append({"benchmark": key[0], "subset": key[1], "sample_id": key[2],
                      "repeat": key[3], "from": old["outcome"], "to": new["outcome"],
                      "baseline_reply": reply_text(old.get("reply")),
                      "current_reply": reply_text(new.get("reply"))})
    return flips


def reply_text(reply: dict[str, Any] | None) -> str | None:
    """Return a reply's text, or its tool calls as name(arguments), cut to REPLY_CHARS."""
    if not reply:
        return None
    parts = [reply["content"]] if reply.get("content") else []
    parts += [f"{call.get('name')}({call.get('arguments')})"
              for call in reply.get("tool_calls") or []]
    if not parts:
        return None
    return "\n".join(parts)[:REPLY_CHARS]


def _warnings(current: dict[str, Any], baseline: dict[str, Any],
              subsets: list[tuple[str, str]], now: dict[SampleKey, dict[str, Any]],
              before: dict[SampleKey, dict[str, Any]]) -> list[str]:
    warnings = []
    if current.get("model") != baseline.get("model"):
        warnings.append(f"model differs: {baseline.get('model')!r} in the baseline, "
                        f"{current.get('model')!r} in this run")
    mine, theirs = current.get("config", {}), baseline.get("config", {})
    for key in MODEL_SETTINGS:
        if key in mine and key in theirs and mine[key] != theirs[key]:
            warnings.append(f"setting {key} differs: {theirs[key]!r} in the baseline, "
                            f"{mine[key]!r} in this run")
    mine, theirs = current.get("versions", {}), baseline.get("versions", {})
    for key in sorted(set(mine) & set(theirs) - IGNORED_VERSIONS):
        if mine[key] != theirs[key]:
            warnings.append(f"version of {key} differs: {theirs[key]} in the baseline, "
                            f"{mine[key]} in this run")
    warnings.extend(_coverage_warnings(subsets, now, before))
    return warnings


def _coverage_warnings(subsets: list[tuple[str, str]], now: dict[SampleKey, dict[str, Any]],
                       before: dict[SampleKey, dict[str, Any]]) -> list[str]:
    """Name the subsets where part of either run's scored samples has no partner."""
    warnings = []
    for benchmark, subset in subsets:
        mine = {key for key in now if key[:2] == (benchmark, subset)}
        theirs = {key for key in before if key[:2] == (benchmark, subset)}
        paired = len(mine & theirs)
        if paired < max(len(mine), len(theirs)):
            warnings.append(f"{benchmark}/{subset}: {paired} paired samples, of {len(theirs)} "
                            f"scored in the baseline and {len(mine)} in this run")
    return warnings
