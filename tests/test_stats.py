"""Standard errors, intervals and paired tests, checked against values computed by hand."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pytest_modeleval.baseline import compare
from pytest_modeleval.results import _row_interval, build_document
from pytest_modeleval.stats import (
    Estimate,
    estimate,
    mcnemar_exact,
    paired_bootstrap,
    wilson_interval,
)
from pytest_modeleval.suites import SubsetScore
from pytest_modeleval.suites.bfcl_v3.rollups import compute_rollups, rollup_weights


def record(subset: str, sample_id: str, score: float, repeat: int = 0,
           benchmark: str = "quiz") -> dict[str, Any]:
    return {"benchmark": benchmark, "subset": subset, "sample_id": sample_id, "repeat": repeat,
            "outcome": "correct" if score >= 1 else "wrong", "score": score, "category": "",
            "latency_s": None, "prompt_tokens": None, "completion_tokens": None,
            "explanation": "", "reply": {"content": f"reply {score}"}}


@pytest.mark.parametrize(("to_wrong", "to_correct", "expected"), [
    (0, 0, 1.0),
    (2, 0, 0.5),
    (5, 0, 2 / 32),
    (3, 1, 2 * 5 / 16),
    (30, 0, 2 / 2 ** 30),
    (10, 10, 1.0),
])
def test_mcnemar_exact_values(to_wrong: int, to_correct: int, expected: float) -> None:
    assert mcnemar_exact(to_wrong, to_correct) == pytest.approx(expected)
    assert mcnemar_exact(to_correct, to_wrong) == pytest.approx(expected)


def test_wilson_interval_known_value() -> None:
    # 390 of 400: centre and half-width from the Wilson formula with z = 1.96.
    low, high = wilson_interval(390, 400)
    assert (low, high) == pytest.approx((0.95460, 0.98637), abs=1e-5)
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(10, 10)[0] < 1.0


def test_estimate_binary_uses_wilson() -> None:
    values = [(str(index), 1.0 if index < 30 else 0.0) for index in range(40)]
    found = estimate(values)
    assert found is not None
    assert found.mean == 0.75
    assert found.stderr == pytest.approx(math.sqrt(0.75 * 0.25 / 39))
    assert found.ci == pytest.approx(wilson_interval(30, 40))


def test_estimate_clusters_repeats() -> None:
    # Two problems, four repeats each: the standard error is over the two
    # problem means (1.0 and 0.25), not over eight samples.
    values = [("a", 1.0)] * 4 + [("b", 1.0)] + [("b", 0.0)] * 3
    found = estimate(values)
    assert found is not None
    assert found.mean == 0.625
    assert found.stderr == pytest.approx(math.sqrt(((1.0 - 0.625) ** 2 + (0.25 - 0.625) ** 2)
                                                   / 1 / 2))
    assert found.ci == pytest.approx((max(0.0, 0.625 - 1.96 * found.stderr),
                                      min(1.0, 0.625 + 1.96 * found.stderr)), abs=1e-3)


def test_estimate_single_partial_score_has_no_interval() -> None:
    found = estimate([("a", 0.5)])
    assert found is not None
    assert (found.mean, found.stderr, found.ci) == (0.5, None, None)
    assert estimate([]) is None


def test_paired_bootstrap_is_deterministic() -> None:
    differences = [-1.0] * 30 + [0.0] * 370
    first = paired_bootstrap(differences)
    assert paired_bootstrap(differences) == first
    p_value, (low, high) = first
    assert p_value < 0.001
    assert low < -0.075 < high < 0
    p_value, (low, high) = paired_bootstrap([0.25, -0.25] * 50)
    assert p_value > 0.5
    assert low < 0 < high


def test_bfcl_rollup_weights_reproduce_scores() -> None:
    subsets = ("simple", "java", "javascript", "multiple", "parallel", "parallel_multiple",
               "irrelevance", "live_simple", "live_multiple", "live_parallel",
               "live_parallel_multiple", "live_relevance", "live_irrelevance",
               "multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param",
               "multi_turn_long_context")
    scores = {name: SubsetScore(10 + index, 0.5 * index + 3) for index, name in enumerate(subsets)}
    weights = rollup_weights(scores)
    for rollup in compute_rollups(scores):
        linear = sum(weight * scores[name].total / scores[name].num
                     for name, weight in weights[rollup.name].items())
        assert linear == pytest.approx(rollup.score), rollup.name
        assert sum(weights[rollup.name].values()) == pytest.approx(1.0), rollup.name
    assert weights["OVERALL"]["simple"] == pytest.approx(1 / 3 * 1 / 2 * 1 / 4 * 1 / 3)


def test_document_rows_have_intervals() -> None:
    samples = [record("a", str(index), 1.0 if index < 8 else 0.0) for index in range(10)]
    samples += [record("b", str(index), 1.0 if index < 5 else 0.0) for index in range(10)]
    document = build_document(samples, {}, 1.0)
    rows = {row["subset"]: row for row in document["subsets"]}
    assert rows["a"]["ci"] == pytest.approx(list(wilson_interval(8, 10)))
    assert rows["a"]["stderr"] == pytest.approx(math.sqrt(0.8 * 0.2 / 9))
    (overall,) = document["rollups"]
    assert overall["ci"] == pytest.approx(list(wilson_interval(13, 20)))
    assert document["baseline"] is None
    assert document["gates"] == []


def test_non_mean_metric_has_no_interval() -> None:
    # A metric such as an F-score is not the mean of the sample scores it sits beside.
    found = Estimate(1.0, 0.0, (0.4, 1.0))
    assert _row_interval(found, 0.5) == {"stderr": None, "ci": None}
    assert _row_interval(found, 1.0) == {"stderr": 0.0, "ci": [0.4, 1.0]}


def test_compare_uses_bootstrap_for_repeats() -> None:
    before = [record("a", str(index), 1.0, repeat) for index in range(20) for repeat in (0, 1)]
    after = [record("a", str(index), 0.0 if index < 4 else 1.0, repeat)
             for index in range(20) for repeat in (0, 1)]
    current = build_document(after, {}, 1.0)
    baseline = build_document(before, {}, 1.0)
    section = compare(current, baseline, "old.json")
    (row,) = section["subsets"]
    assert row["test"] == "bootstrap"
    assert (row["pairs"], row["to_wrong"], row["to_correct"]) == (40, 8, 0)
    assert row["delta"] == pytest.approx(-0.2)
    assert row["p_value"] < 0.05
    assert len(section["flips"]) == 8
    assert section["flips"][0]["baseline_reply"] == "reply 1.0"


def test_compare_warns_on_partial_pairing_and_versions() -> None:
    current = build_document([record("a", str(index), 1.0) for index in range(5)], {}, 1.0)
    baseline = build_document([record("a", str(index), 1.0) for index in range(3)], {}, 1.0)
    baseline["versions"]["quiz_data"] = "quiz.jsonl sha256:aaa"
    current["versions"]["quiz_data"] = "quiz.jsonl sha256:bbb"
    section = compare(current, baseline, "old.json")
    assert section["warnings"] == [
        "version of quiz_data differs: quiz.jsonl sha256:aaa in the baseline, quiz.jsonl "
        "sha256:bbb in this run",
        "quiz/a: 3 paired samples, of 3 scored in the baseline and 5 in this run",
    ]


def test_all_correct_repeats_keep_interval_width() -> None:
    repeated = estimate([(problem, 1.0) for problem in range(200) for _ in range(3)])
    single = estimate([(problem, 1.0) for problem in range(200)])
    assert repeated is not None and single is not None
    assert repeated.ci == single.ci
    assert repeated.ci[0] < 0.99
