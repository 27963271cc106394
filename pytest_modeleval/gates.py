"""Gates that decide the exit status: thresholds, regression against a baseline, error rate.

Each gate becomes one row of document["gates"]:
{"kind": "threshold" | "regression" | "error_rate", "name": str, "passed": bool,
 "value": float | None, "bound": float | None, "noise": bool, "message": str}.
"noise" is true when the bound lies inside the 95 % interval of the value, so
the verdict could flip on a rerun. "message" is one line that names the gate
and states by how much it passed or failed.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .options import DEFAULT_ALPHA, Threshold, parse_threshold
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
        value, note = measured.get((threshold.benchmark, threshold.target, threshold.metric),
                                   (None, _absent(threshold, measured)))
        passed = value is not None and _COMPARE[threshold.op](value, threshold.bound)
        rows.append({
            "expression": threshold.expression, "benchmark": threshold.benchmark,
            "target": threshold.target, "metric": threshold.metric,
            "op": threshold.op, "bound": threshold.bound,
            "value": value, "passed": passed, "note": "" if value is not None else note,
        })
    return rows


MeasuredKey = tuple[str, str, "str | None"]


def _measured_scores(document: dict[str, Any]) -> dict[MeasuredKey, tuple[float | None, str]]:
    """Map (benchmark, target, metric) to (score, note); metric None is the first metric."""
    measured: dict[MeasuredKey, tuple[float | None, str]] = {}
    rows = [(row, row["subset"], "no scored sample") for row in document["subsets"]] + [
        (row, row["name"], f"partial: missing {', '.join(row['missing'])}"
         if row["partial"] else "") for row in document["rollups"]]
    for row, target, empty_note in rows:
        note = "" if row["score"] is not None else empty_note
        # A subset or roll-up with several metrics is gated on its first one by default.
        measured.setdefault((row["benchmark"], target, None), (row["score"], note))
        measured.setdefault((row["benchmark"], target, row.get("metric")), (row["score"], note))
    return measured


def _absent(threshold: Threshold, measured: dict[MeasuredKey, Any]) -> str:
    """Say why a threshold's target has no row: its benchmark did not run, or a misspelling."""
    targets = list(dict.fromkeys(target for benchmark, target, _ in measured
                                 if benchmark == threshold.benchmark))
    if not targets:
        return "did not run"
    if threshold.target not in targets:
        return (f"{threshold.benchmark} has no subset or roll-up {threshold.target!r}; "
                f"valid: {', '.join(targets)}")
    metrics = [metric for benchmark, target, metric in measured if metric is not None
               and (benchmark, target) == (threshold.benchmark, threshold.target)]
    return (f"{threshold.benchmark}/{threshold.target} has no metric {threshold.metric!r}; "
            f"valid: {', '.join(metrics)}")


def describe_failure(row: dict[str, Any]) -> str:
    target = f"{row['benchmark']}/{row['target']}"
    if row["value"] is None:
        return f"threshold failed: {row['expression']} ({target} not measured: {row['note']})"
    return (f"threshold failed: {row['expression']} (measured {row['value']:.4f}, "
            f"bound {row['op']} {row['bound']:g})")


@dataclass(frozen=True)
class GateSettings:
    """The gates of a run; `max_error_rate` is None when not given explicitly."""

    thresholds: tuple[Threshold, ...] = ()
    max_regression: float | None = None
    alpha: float = DEFAULT_ALPHA
    max_error_rate: float | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> GateSettings:
        """Read the gates from the settings stored in a results.json."""
        alpha = config.get("alpha")
        return cls(tuple(parse_threshold(text) for text in config.get("thresholds") or []),
                   config.get("max_regression"),
                   DEFAULT_ALPHA if alpha is None else alpha,
                   config.get("max_error_rate"))


def apply_gates(document: dict[str, Any], settings: GateSettings,
                baseline: dict[str, Any] | None = None, baseline_path: str = "") -> None:
    """Fill in the document's "thresholds", "baseline" (when given) and "gates"."""
    from .baseline import compare

    document["thresholds"] = evaluate_thresholds(settings.thresholds, document)
    if baseline is not None:
        document["baseline"] = compare(document, baseline, baseline_path)
    document["gates"] = evaluate_gates(settings, document)


def evaluate_gates(settings: GateSettings, document: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the gate rows of a document whose "thresholds" and "baseline" are filled in.

    The regression gate applies only with a baseline. Once any gate applies,
    the error-rate gate does too, with a bound of 0 unless given.
    """
    intervals = _target_intervals(document)
    gates = [_threshold_gate(row, intervals) for row in document["thresholds"]]
    if settings.max_regression is not None and document.get("baseline") is not None:
        gates.extend(_regression_gates(document["baseline"], settings.max_regression,
                                       settings.alpha))
    if gates or settings.max_error_rate is not None:
        gates.append(_error_rate_gate(document["totals"], settings.max_error_rate or 0.0))
    return gates


def _threshold_gate(row: dict[str, Any], intervals: dict[MeasuredKey, Any]) -> dict[str, Any]:
    ci = intervals.get((row["benchmark"], row["target"], row.get("metric")))
    noise = _inside(row["bound"], ci)
    if not row["passed"]:
        message = describe_failure(row)
        if row["value"] is not None:
            message += f"; short by {abs(row['value'] - row['bound']):.4f}"
    else:
        message = (f"threshold passed: {row['expression']} (measured {row['value']:.4f}); "
                   f"margin {abs(row['value'] - row['bound']):.4f}")
    if noise:
        message += f"; within noise: the bound is inside the 95 % interval {_span(ci)}"
    return {"kind": "threshold", "name": row["expression"], "passed": row["passed"],
            "value": row["value"], "bound": row["bound"], "noise": noise, "message": message}


def _target_intervals(document: dict[str, Any]) -> dict[MeasuredKey, Any]:
    """Return the 95 % interval of each threshold target, keyed as `_measured_scores`."""
    intervals: dict[MeasuredKey, Any] = {}
    rows = [(row, row["subset"]) for row in document["subsets"]] + [
        (row, row["name"]) for row in document["rollups"]]
    for row, target in rows:
        intervals.setdefault((row["benchmark"], target, None), row.get("ci"))
        intervals.setdefault((row["benchmark"], target, row.get("metric")), row.get("ci"))
    return intervals


def _regression_gates(baseline: dict[str, Any], max_regression: float, alpha: float
                      ) -> Iterable[dict[str, Any]]:
    if not baseline["subsets"]:
        yield {"kind": "regression", "name": "baseline", "passed": False, "value": None,
               "bound": -max_regression, "noise": False,
               "message": f"regression gate failed: no sample of this run is scored in the "
               f"baseline {baseline['path']}; pass the results.json of a run of the same "
               "benchmarks"}
        return
    for row in baseline["subsets"]:
        yield _regression_gate(row, max_regression, alpha)


def _regression_gate(row: dict[str, Any], max_regression: float, alpha: float
                     ) -> dict[str, Any]:
    """Fail a subset only when its drop exceeds `max_regression` and its test has p < alpha."""
    name = f"{row['benchmark']}/{row['subset']}"
    drop = -row["delta"]
    too_large = drop > max_regression
    significant = row["p_value"] < alpha
    passed = not (too_large and significant)
    change = (f"{row['baseline']:.4f} -> {row['current']:.4f} over {row['pairs']} pairs, "
              f"{row['to_wrong']} correct->wrong, {row['to_correct']} wrong->correct")
    size = (f"dropped by {drop:.4f}" if drop > 0 else f"changed by {row['delta']:+.4f}")
    limit = (f"more than the allowed {max_regression:g}" if too_large
             else f"within the allowed {max_regression:g}")
    test = "McNemar" if row["test"] == "mcnemar" else "paired bootstrap"
    verdict = (f"significant ({test} p={row['p_value']:.2g} < alpha {alpha:g})" if significant
               else f"not significant ({test} p={row['p_value']:.2g} >= alpha {alpha:g})")
    message = (f"regression gate {'passed' if passed else 'failed'}: {name} {size} "
               f"({change}), {limit}, {verdict}")
    bound = 0.0 - max_regression  # not -max_regression, which gives -0.0 for 0
    noise = _inside(bound, row["ci"])
    if noise:
        message += (f"; within noise: the bound {bound:g} is inside the 95 % "
                    f"interval of the delta {_span(row['ci'])}")
    return {"kind": "regression", "name": name, "passed": passed, "value": row["delta"],
            "bound": bound, "noise": noise, "message": message}


def _error_rate_gate(totals: dict[str, Any], max_error_rate: float) -> dict[str, Any]:
    errors, samples = totals["errors"], totals["samples"]
    rate = errors / samples if samples else 0.0
    passed = rate <= max_error_rate
    counts = f"{errors} of {samples} samples ({rate:.4f}) ended in a server error"
    if passed:
        message = f"error-rate gate passed: {counts}, allowed {max_error_rate:g}"
    else:
        message = (f"error-rate gate failed: {counts}, more than the allowed "
                   f"{max_error_rate:g}; fix the server or raise --max-error-rate")
    return {"kind": "error_rate", "name": "server errors", "passed": passed, "value": rate,
            "bound": max_error_rate, "noise": False, "message": message}


def _inside(bound: float | None, ci: Any) -> bool:
    return bound is not None and ci is not None and ci[0] <= bound <= ci[1]


def _span(ci: Any) -> str:
    return f"[{ci[0]:.4f}, {ci[1]:.4f}]"
