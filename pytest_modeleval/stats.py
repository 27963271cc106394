"""Standard errors, 95 % intervals and paired tests of benchmark scores.

Samples of one problem are not independent when a run has repeats, so every
standard error of a score is clustered by problem (the sample id).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Z_95 = 1.959963984540054  # two-sided 95 % quantile of the standard normal
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20250101  # fixed, so a rerun on the same data gives the same p-value


@dataclass(frozen=True)
class Estimate:
    """A mean with its clustered standard error and 95 % interval (None when undefined)."""

    mean: float
    stderr: float | None
    ci: tuple[float, float] | None


def standard_error(values: Sequence[float]) -> float | None:
    """Standard error of the mean of independent values; None for fewer than two."""
    count = len(values)
    if count < 2:
        return None
    mean = sum(values) / count
    variance = sum((value - mean) ** 2 for value in values) / (count - 1)
    return math.sqrt(variance / count)


def wilson_interval(successes: int, count: int) -> tuple[float, float]:
    """Return the 95 % Wilson score interval of a binomial proportion.

    Unlike the normal interval, it stays inside [0, 1] and keeps a width at 0 and 1.
    """
    p = successes / count
    z2 = Z_95 * Z_95
    centre = (p + z2 / (2 * count)) / (1 + z2 / count)
    half = Z_95 * math.sqrt(p * (1 - p) / count + z2 / (4 * count * count)) / (1 + z2 / count)
    return max(0.0, centre - half), min(1.0, centre + half)


def normal_interval(mean: float, stderr: float, bounded: bool = True) -> tuple[float, float]:
    """mean +- 1.96 SE, clipped to [0, 1] when the score is a share."""
    low, high = mean - Z_95 * stderr, mean + Z_95 * stderr
    if bounded:
        low, high = max(0.0, low), min(1.0, high)
    return low, high


def estimate(values: Sequence[tuple[object, float]]) -> Estimate | None:
    """Estimate the mean of (problem, score) pairs with a clustered 95 % interval.

    The mean is over all values. Its standard error is cluster-robust: with
    s_i the sum and n_i the count of problem i's values, N values and k
    problems, SE = sqrt(k / (k - 1) * sum((s_i - mean * n_i) ** 2)) / N, which
    is sd(problem means) / sqrt(k) when every problem has the same count.
    When every problem has one score of 0 or 1, the interval is Wilson's.
    Otherwise (repeats, partial credit) it is the normal interval, clipped to
    [0, 1] when all scores lie there. When every problem has the same mean,
    the SE is 0, so the interval is Wilson's over the problems instead: a
    subset scored 1.0 on every repeat is then not reported as exact.
    Returns None for no values.
    """
    if not values:
        return None
    clusters: dict[object, list[float]] = {}
    for key, value in values:
        clusters.setdefault(key, []).append(value)
    total = sum(value for _, value in values)
    mean = total / len(values)
    stderr = None
    if len(clusters) >= 2:
        spread = sum((sum(group) - mean * len(group)) ** 2 for group in clusters.values())
        stderr = math.sqrt(len(clusters) / (len(clusters) - 1) * spread) / len(values)
    one_per_problem = len(clusters) == len(values)
    if one_per_problem and all(value in (0.0, 1.0) for _, value in values):
        return Estimate(mean, stderr, wilson_interval(round(total), len(values)))
    if stderr is None:
        return Estimate(mean, None, None)
    bounded = all(0.0 <= value <= 1.0 for _, value in values)
    if stderr == 0 and bounded:
        problems = len(clusters)
        return Estimate(mean, stderr, wilson_interval(round(mean * problems), problems))
    return Estimate(mean, stderr, normal_interval(mean, stderr, bounded))


def combine(weights: Mapping[str, float], parts: Mapping[str, Estimate]) -> float | None:
    """Standard error of sum(weight * part mean) for independent parts; None if one lacks SE."""
    variance = 0.0
    for name, weight in weights.items():
        if weight == 0:
            continue
        part = parts.get(name)
        if part is None or part.stderr is None:
            return None
        variance += (weight * part.stderr) ** 2
    return math.sqrt(variance)


def mcnemar_exact(to_wrong: int, to_correct: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of the discordant pairs at 1/2.

    With b pairs that went correct -> wrong and c that went wrong -> correct,
    p = min(1, 2 * P(X <= min(b, c))) for X ~ Binomial(b + c, 1/2).
    """
    discordant = to_wrong + to_correct
    if discordant == 0:
        return 1.0
    smaller = min(to_wrong, to_correct)
    tail = sum(math.comb(discordant, k) for k in range(smaller + 1))
    return min(1.0, 2 * tail / 2 ** discordant)


def paired_difference_interval(differences: Sequence[float]) -> tuple[float, float] | None:
    """Normal 95 % interval of the mean of paired differences; None for fewer than two."""
    stderr = standard_error(differences)
    if stderr is None:
        return None
    mean = sum(differences) / len(differences)
    return normal_interval(mean, stderr, bounded=False)


def paired_bootstrap(differences: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = BOOTSTRAP_SEED) -> tuple[float, tuple[float, float]]:
    """Return the two-sided p-value and 95 % percentile interval of the mean difference.

    Problems are resampled with replacement. The p-value is the share of
    resampled means, shifted to the null of no difference, that lie at least
    as far from 0 as the observed mean.
    """
    import numpy as np

    observed = np.asarray(differences, dtype=float)
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, len(observed), size=(resamples, len(observed)))
    means = observed[indices].mean(axis=1)
    mean = float(observed.mean())
    extreme = np.abs(means - mean) >= abs(mean) - 1e-12
    # The +1 terms count the observed sample itself, so p is never 0.
    p_value = float((extreme.sum() + 1) / (resamples + 1))
    low, high = np.percentile(means, [2.5, 97.5])
    return min(1.0, p_value), (float(low), float(high))
