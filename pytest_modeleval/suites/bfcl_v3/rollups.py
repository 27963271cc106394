"""BFCL v3 roll-ups, following the official v3 leaderboard formula.

OVERALL is the unweighted mean of NON_LIVE, LIVE and MULTI_TURN, where
NON_LIVE = mean(AST_NON_LIVE, irrelevance),
AST_NON_LIVE = mean(mean(simple, java, javascript), multiple, parallel, parallel_multiple),
LIVE is sample-weighted over the live AST subsets, live_relevance and live_irrelevance,
MULTI_TURN = mean(multi_turn_base, sample-weighted mean of the other three multi-turn subsets).
AST_LIVE and RELEVANCE are sample-weighted means shown per category.
A roll-up with a missing input has no score: a number over part of the
inputs would not be comparable with published results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .. import Rollup, SubsetScore
from .data import MULTI_TURN_SUBSETS

ROLLUP_NAMES = ("AST_NON_LIVE", "AST_LIVE", "RELEVANCE", "MULTI_TURN", "NON_LIVE", "LIVE",
                "OVERALL")

Scores = Mapping[str, SubsetScore]


def compute_rollups(scores: Scores) -> list[Rollup]:
    """Return every roll-up in ROLLUP_NAMES order; partial ones have score None."""
    rules: dict[str, tuple[tuple[str, ...], Callable[[Scores], float]]] = {
        "AST_NON_LIVE": (_AST_NON_LIVE, _ast_non_live),
        "AST_LIVE": (_AST_LIVE, lambda s: _weighted(s, _AST_LIVE)),
        "RELEVANCE": (_RELEVANCE, lambda s: _weighted(s, _RELEVANCE)),
        "MULTI_TURN": (MULTI_TURN_SUBSETS, _multi_turn),
        "NON_LIVE": (_AST_NON_LIVE + ("irrelevance",), _non_live),
        "LIVE": (_LIVE, lambda s: _weighted(s, _LIVE)),
        "OVERALL": (_AST_NON_LIVE + ("irrelevance",) + _LIVE + MULTI_TURN_SUBSETS, _overall),
    }
    return [_rollup(name, *rules[name], scores) for name in ROLLUP_NAMES]


def rollup_weights(scores: Scores) -> dict[str, dict[str, float]]:
    """Return each complete roll-up's weight on each subset mean, for its standard error.

    With the sample counts fixed, every formula here is linear in the subset
    means, so evaluating it with one subset's mean at 1 and all others at 0
    gives that subset's weight.
    """
    weights: dict[str, dict[str, float]] = {}
    for subset in scores:
        unit = {name: SubsetScore(score.num, float(score.num) if name == subset else 0.0)
                for name, score in scores.items()}
        for rollup in compute_rollups(unit):
            if rollup.score is not None:
                weights.setdefault(rollup.name, {})[subset] = rollup.score
    return weights


_AST_NON_LIVE = ("simple", "java", "javascript", "multiple", "parallel", "parallel_multiple")
_AST_LIVE = ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple")
_RELEVANCE = ("irrelevance", "live_relevance", "live_irrelevance")
_LIVE = _AST_LIVE + ("live_relevance", "live_irrelevance")


def _rollup(name: str, inputs: tuple[str, ...], formula: Callable[[Scores], float],
            scores: Scores) -> Rollup:
    missing = tuple(subset for subset in inputs
                    if subset not in scores or scores[subset].mean is None)
    num = sum(scores[subset].num for subset in inputs if subset in scores)
    return Rollup(name, None if missing else formula(scores), num, missing)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _weighted(scores: Scores, subsets: tuple[str, ...]) -> float:
    num = sum(scores[s].num for s in subsets)
    return sum(scores[s].total for s in subsets) / num


def _score(scores: Scores, subset: str) -> float:
    mean = scores[subset].mean
    assert mean is not None
    return mean


def _ast_non_live(scores: Scores) -> float:
    simple = _mean([_score(scores, s) for s in ("simple", "java", "javascript")])
    return _mean([simple] + [_score(scores, s) for s in ("multiple", "parallel",
                                                         "parallel_multiple")])


def _non_live(scores: Scores) -> float:
    return _mean([_ast_non_live(scores), _score(scores, "irrelevance")])


def _multi_turn(scores: Scores) -> float:
    augmented = _weighted(scores, MULTI_TURN_SUBSETS[1:])
    return _mean([_score(scores, "multi_turn_base"), augmented])


def _overall(scores: Scores) -> float:
    return _mean([_non_live(scores), _weighted(scores, _LIVE), _multi_turn(scores)])
