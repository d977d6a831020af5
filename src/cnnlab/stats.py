"""Uncertainty of the accuracies the lab reports, and when a difference between two of them is real.

* One run scored on ``n`` test images: a binomial proportion, with its 95% Wilson score interval
  (Wilson 1927; scipy's ``binomtest``), which stays inside [0, 1] and is honest for small ``n``.
* Several seeds: mean ± sample standard deviation.
* A difference between two entries: over seeds, Welch's t interval (unequal variances; scipy's
  ``ttest_ind``); between single runs, Newcombe's hybrid score interval built from the two Wilson
  intervals (Newcombe 1998, method 10). A difference whose interval covers 0 is "within noise".
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value, NaN for none)."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    mean = sum(values) / n
    std = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0
    return mean, std


def wilson_interval(accuracy: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of an accuracy (a fraction) measured on ``n`` examples (scipy's)."""
    from scipy.stats import binomtest

    k = round(accuracy * n)
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class Difference:
    """``a - b`` of two accuracies (fractions), with its ``confidence`` interval [low, high] and the
    method that gave it; NaN bounds when there was nothing to build an interval from."""

    diff: float
    low: float
    high: float
    method: str

    @property
    def known(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    @property
    def within_noise(self) -> bool:
        """True when the interval covers 0 (or is unknown): the data cannot tell the two apart."""
        return not self.known or self.low <= 0.0 <= self.high

    def verdict(self, ahead: str, behind: str) -> str:
        """``ahead`` or ``behind`` as the sign of a clear difference says, "within noise" when the interval
        covers 0, and "no interval to judge by" when there is none."""
        if not self.known:
            return "no interval to judge by"
        if self.within_noise:
            return "within noise"
        return ahead if self.diff > 0 else behind

    def text(self) -> str:
        """"+D points, 95% interval [+LOW, +HIGH] (METHOD)", in percentage points."""
        if not self.known:
            return f"{100 * self.diff:+.1f} points (no interval: {self.method})"
        return f"{100 * self.diff:+.1f} points, 95% interval [{100 * self.low:+.1f}, {100 * self.high:+.1f}] ({self.method})"


def difference(a: list[float], b: list[float], n_a: int | None = None, n_b: int | None = None,
               confidence: float = 0.95) -> Difference:
    """The difference of mean accuracy ``a`` minus ``b`` (fractions; one value per seed) and its interval:
    Welch's t when both have two or more seeds (and some spread); Newcombe's from the Wilson intervals of
    the means on ``n_a`` and ``n_b`` scored images for single runs, or seeds that all agree; unknown
    (NaN bounds) for one seed against several, or without the image counts.

    >>> round(difference([0.80], [0.70], 1000, 1000).low, 3)
    0.061
    """
    mean_a, mean_b = mean_std(a)[0], mean_std(b)[0]
    diff = mean_a - mean_b
    if len(a) >= 2 and len(b) >= 2 and (mean_std(a)[1] > 0 or mean_std(b)[1] > 0):
        from scipy.stats import ttest_ind

        ci = ttest_ind(a, b, equal_var=False).confidence_interval(confidence_level=confidence)
        return Difference(diff, float(ci.low), float(ci.high), f"Welch, {len(a)} and {len(b)} seeds")
    if (len(a) >= 2) != (len(b) >= 2):  # a binomial interval on one side would ignore the other's seed spread
        return Difference(diff, float("nan"), float("nan"), f"{len(a)} against {len(b)} seeds")
    # Single runs, or seeds without any spread (identical results): only the test-set sampling is left.
    if not n_a or not n_b:
        return Difference(diff, float("nan"), float("nan"), "test-set sizes unknown")
    la, ua = wilson_interval(mean_a, n_a, confidence)
    lb, ub = wilson_interval(mean_b, n_b, confidence)
    low = diff - math.sqrt((mean_a - la) ** 2 + (ub - mean_b) ** 2)
    high = diff + math.sqrt((ua - mean_a) ** 2 + (mean_b - lb) ** 2)
    return Difference(diff, low, high, f"Newcombe, {n_a:,} and {n_b:,} images scored")
