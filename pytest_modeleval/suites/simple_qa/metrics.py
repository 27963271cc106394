"""SimpleQA metrics of one subset, computed from the judge's grades."""

from __future__ import annotations

from typing import get_args

from .grading import Verdict

METRIC_NAMES = ("is_correct", "is_incorrect", "is_not_attempted", "accuracy_given_attempted",
                "f1")
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)


def verdict_metrics(verdicts: list[Verdict]) -> list[tuple[str, float | None]]:
    """Compute SimpleQA's metrics from graded samples, in the order of METRIC_NAMES.

    `verdicts` contains one grade per graded sample. Unscored samples, whose judge reply
    could not be read, must be left out by the caller, so they count in no share.

    The three `is_*` values are shares of all graded samples. accuracy_given_attempted is
    correct / (correct + incorrect). f1 is the harmonic mean of is_correct and
    accuracy_given_attempted, and 0.0 when both are 0. A value is None when its
    denominator is 0: every value for an empty list, and accuracy_given_attempted and f1
    when no sample was attempted. Raises ValueError for a value that is not a Verdict.
    """
    invalid = sorted({repr(verdict) for verdict in verdicts if verdict not in VERDICTS})
    if invalid:
        raise ValueError(f"invalid verdicts {', '.join(invalid)}: expected one of "
                         f"{', '.join(VERDICTS)}")

    total = len(verdicts)
    correct = verdicts.count("CORRECT")
    incorrect = verdicts.count("INCORRECT")
    not_attempted = total - correct - incorrect

    is_correct = _ratio(correct, total)
    accuracy_given_attempted = _ratio(correct, correct + incorrect)
    values = (
        is_correct,
        _ratio(incorrect, total),
        _ratio(not_attempted, total),
        accuracy_given_attempted,
        _harmonic_mean(is_correct, accuracy_given_attempted),
    )
    return list(zip(METRIC_NAMES, values))


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _harmonic_mean(first: float | None, second: float | None) -> float | None:
    if first is None or second is None:
        return None
    if first + second == 0:
        return 0.0
    return 2 * first * second / (first + second)
