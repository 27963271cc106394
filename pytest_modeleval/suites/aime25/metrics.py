"""AIME metrics of one subset over repeated samples: AveragePass@1, pass@k and maj@N."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from math import comb
from typing import Any

SCORED_OUTCOMES = ("correct", "wrong")


@dataclass(frozen=True)
class Attempt:
    """One scored repeat of a problem."""

    repeat: int
    correct: bool
    extracted: str | None


def pass_at_k(n: int, c: int, k: int) -> float:
    """Estimate pass@k without bias from `n` samples of which `c` are correct.

    The value is 1 - C(n-c, k) / C(n, k), the chance that k samples drawn without
    replacement from the n contain a correct one. It is computed as an exact fraction
    of Python integers, so it neither overflows nor loses precision before the final
    rounding to float. Raises ValueError unless 0 <= c <= n and 1 <= k <= n.
    """
    if not 0 <= c <= n:
        raise ValueError(f"invalid correct count c={c} for n={n}: expected 0 <= c <= n")
    if not 1 <= k <= n:
        raise ValueError(f"invalid k={k} for n={n}: expected 1 <= k <= n")
    return float(1 - Fraction(comb(n - c, k), comb(n, k)))


def metric_names(repeats: int) -> list[str]:
    """List the metrics reported for `repeats` samples per problem, in report order.

    AveragePass@1 comes first, then pass@k for k = 2, 4, 8, ... up to `repeats` and for
    k = `repeats` itself, then maj@`repeats` when `repeats` > 1. Raises ValueError when
    `repeats` < 1.
    """
    if repeats < 1:
        raise ValueError(f"invalid repeats {repeats}: expected 1 or more")
    return ["AveragePass@1", *(f"pass@{k}" for k in _pass_ks(repeats)),
            *([f"maj@{repeats}"] if repeats > 1 else [])]


def _pass_ks(repeats: int) -> list[int]:
    ks = []
    k = 2
    while k <= repeats:
        ks.append(k)
        k *= 2
    if repeats > 1 and repeats not in ks:
        ks.append(repeats)
    return ks


def subset_metrics(records: list[dict[str, Any]], repeats: int
                   ) -> list[tuple[str, float | None]]:
    """Compute the metrics of metric_names(repeats) over the records of one subset.

    Each record has "sample_id", "repeat", "outcome", "score" and "details" (a dict with
    "extracted", or None). Only "correct" and "wrong" outcomes count, so errors and
    unscored samples are left out. A problem's n is its count of scored repeats and c
    the correct ones among them. When one (sample_id, repeat) has several records, the
    last one counts. A value is None when no problem qualifies.

    - AveragePass@1: mean over problems of c / n.
    - pass@k: mean over problems with n >= k of pass_at_k(n, c, k).
    - maj@N: share of problems whose majority answer is correct (see majority_correct).
    """
    problems = _attempts_by_problem(records)
    values: list[tuple[str, float | None]] = [
        ("AveragePass@1", _mean([_share_correct(attempts) for attempts in problems]))]

    for k in _pass_ks(repeats):
        estimates = [pass_at_k(len(attempts), _count_correct(attempts), k)
                     for attempts in problems if len(attempts) >= k]
        values.append((f"pass@{k}", _mean(estimates)))

    if repeats > 1:
        votes = [1.0 if majority_correct(attempts) else 0.0 for attempts in problems]
        values.append((f"maj@{repeats}", _mean(votes)))
    return values


def majority_correct(attempts: list[Attempt]) -> bool:
    """Return whether the most common extracted answer of a problem's attempts is correct.

    A tie goes to the answer first given in the lowest repeat. A None answer wins only
    when every answer is None. The majority answer is correct when any attempt that gave
    it was graded correct. Returns False for no attempts.
    """
    answered = [attempt for attempt in attempts if attempt.extracted is not None]
    candidates = sorted(answered or attempts, key=lambda attempt: attempt.repeat)
    if not candidates:
        return False

    counts = Counter(attempt.extracted for attempt in candidates)
    first_repeat: dict[str | None, int] = {}
    for attempt in candidates:
        first_repeat.setdefault(attempt.extracted, attempt.repeat)
    winner = max(counts, key=lambda answer: (counts[answer], -first_repeat[answer]))
    return any(attempt.correct for attempt in candidates if attempt.extracted == winner)


def _attempts_by_problem(records: list[dict[str, Any]]) -> list[list[Attempt]]:
    by_problem: dict[str, dict[int, Attempt]] = {}
    for record in records:
        if record["outcome"] not in SCORED_OUTCOMES:
            continue
        details = record.get("details") or {}
        attempt = Attempt(repeat=int(record["repeat"]), correct=record["outcome"] == "correct",
                          extracted=details.get("extracted"))
        by_problem.setdefault(str(record["sample_id"]), {})[attempt.repeat] = attempt
    return [list(attempts.values()) for attempts in by_problem.values()]


def _count_correct(attempts: list[Attempt]) -> int:
    return sum(attempt.correct for attempt in attempts)


def _share_correct(attempts: list[Attempt]) -> float:
    return _count_correct(attempts) / len(attempts)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
