"""BFCL v3 roll-ups against the official v3 formula, computed by hand."""

from __future__ import annotations

import pytest

from pytest_modeleval.suites import SubsetScore
from pytest_modeleval.suites.bfcl_v3.rollups import MULTI_TURN_SUBSETS, compute_rollups

# (num, correct) per subset: arbitrary numbers so every weight matters.
COUNTS = {
    "simple": (400, 380), "java": (100, 60), "javascript": (50, 30),
    "multiple": (200, 180), "parallel": (200, 170), "parallel_multiple": (200, 150),
    "irrelevance": (240, 200),
    "live_simple": (258, 200), "live_multiple": (1053, 700), "live_parallel": (16, 10),
    "live_parallel_multiple": (24, 12), "live_relevance": (17, 15),
    "live_irrelevance": (884, 700),
    "multi_turn_base": (200, 100), "multi_turn_miss_func": (200, 60),
    "multi_turn_miss_param": (200, 50), "multi_turn_long_context": (200, 40),
}


def scores(names: tuple[str, ...] | None = None) -> dict[str, SubsetScore]:
    chosen = names or tuple(COUNTS)
    return {name: SubsetScore(COUNTS[name][0], COUNTS[name][1]) for name in chosen}


def acc(name: str) -> float:
    return COUNTS[name][1] / COUNTS[name][0]


def weighted(names: tuple[str, ...]) -> float:
    return sum(COUNTS[n][1] for n in names) / sum(COUNTS[n][0] for n in names)


def test_full_rollups_match_formula() -> None:
    rollups = {r.name: r for r in compute_rollups(scores())}
    simple = (acc("simple") + acc("java") + acc("javascript")) / 3
    ast_non_live = (simple + acc("multiple") + acc("parallel") + acc("parallel_multiple")) / 4
    non_live = (ast_non_live + acc("irrelevance")) / 2
    live = weighted(("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple",
                     "live_relevance", "live_irrelevance"))
    multi_turn = (acc("multi_turn_base") + weighted(MULTI_TURN_SUBSETS[1:])) / 2
    assert rollups["AST_NON_LIVE"].score == pytest.approx(ast_non_live)
    assert rollups["NON_LIVE"].score == pytest.approx(non_live)
    assert rollups["LIVE"].score == pytest.approx(live)
    assert rollups["MULTI_TURN"].score == pytest.approx(multi_turn)
    assert rollups["OVERALL"].score == pytest.approx((non_live + live + multi_turn) / 3)
    assert rollups["AST_LIVE"].score == pytest.approx(weighted(
        ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple")))
    assert rollups["RELEVANCE"].score == pytest.approx(weighted(
        ("irrelevance", "live_relevance", "live_irrelevance")))
    assert not any(r.partial for r in rollups.values())
    assert rollups["OVERALL"].num == sum(n for n, _ in COUNTS.values())


def test_missing_subsets_make_partial() -> None:
    single_turn = tuple(n for n in COUNTS if n not in MULTI_TURN_SUBSETS)
    rollups = {r.name: r for r in compute_rollups(scores(single_turn))}
    assert rollups["OVERALL"].score is None
    assert rollups["OVERALL"].missing == MULTI_TURN_SUBSETS
    assert rollups["MULTI_TURN"].score is None
    assert rollups["LIVE"].score is not None
    assert rollups["NON_LIVE"].score is not None


def test_subset_without_scored_samples_is_missing() -> None:
    partial = scores()
    partial["java"] = SubsetScore(0, 0.0)
    rollups = {r.name: r for r in compute_rollups(partial)}
    assert rollups["AST_NON_LIVE"].missing == ("java",)
    assert rollups["AST_NON_LIVE"].score is None
    assert rollups["AST_LIVE"].score is not None
