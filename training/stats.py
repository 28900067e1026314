"""Confidence intervals for evaluation scores, seeded so a recomputation gives the same bounds.

`wilson_interval` is the Wilson score interval of a proportion (k correct of n): it is what the
leaderboard shows (`ci_method: "wilson"`), because it stays honest on small sets, where the
percentile bootstrap collapses (6 of 6 correct bootstraps to [1, 1]; Wilson says [0.61, 1]).
`bootstrap_ci` resamples items with replacement and takes the percentile interval of the mean; it is
kept beside Wilson and works for any per-item value, not only 0/1.
`paired_bootstrap_ci` does the same for per-item differences between two evaluations on the same
items (a regression check): resampling pairs keeps the correlation between the two models' items,
which makes the interval much tighter than two separate intervals would suggest. Identical
predictions give exactly [0, 0].
`minimum_detectable_effect` says how large a true difference a paired check of that size and noise
would find with 80 % power: a check on few or noisy items cannot see small regressions.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95
SEED = 0
POWER = 0.8


def _z(level: float) -> float:
    """The two-sided normal quantile of a confidence level (1.959964… for 0.95)."""
    return NormalDist().inv_cdf(1 - (1 - level) / 2)


def _percentile_interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def wilson_interval(successes: int, n: int, *, level: float = LEVEL) -> tuple[float, float] | None:
    """(low, high) of the Wilson score interval for `successes` of `n`; None when n is 0."""
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError("successes must be between 0 and n")
    z = _z(level)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At p = 0 or 1 one bound is exact; clamp the rounding so it reads 0.0 or 1.0, not 1e-17.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def bootstrap_ci(values, *, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = SEED):
    """(low, high) of the mean of `values` (e.g. 1 for a correct item, 0 otherwise); None when empty."""
    # Sorted first: a resample's mean depends only on which values were drawn, so the bounds are the
    # same whatever order the items came in (a recomputation never depends on item order).
    data = np.sort(np.asarray(values, dtype=np.float64))
    if data.size == 0:
        return None
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, data.size, size=(resamples, data.size))
    return _percentile_interval(data[indices].mean(axis=1), level)


def paired_bootstrap_ci(baseline, current, *, resamples: int = RESAMPLES, level: float = LEVEL,
                        seed: int = SEED):
    """(low, high) of mean(current - baseline) over paired items; None when there are none."""
    base, now = np.asarray(baseline, dtype=np.float64), np.asarray(current, dtype=np.float64)
    if base.shape != now.shape:
        raise ValueError("paired values must have the same length")
    return bootstrap_ci(now - base, resamples=resamples, level=level, seed=seed)


def minimum_detectable_effect(baseline, current, *, level: float = LEVEL, power: float = POWER) -> float | None:
    """The smallest true mean difference a paired two-sided test at `level` detects with `power`:
    (z_level + z_power) · sd(differences) / √n. None with fewer than two pairs.

    When the two evaluations agree on every item the observed sd is 0, which would claim any
    difference is detectable; the worst case for 0/1 items (sd 1, half the items flipping either way)
    is used instead, so the number never overstates what the check can see."""
    base, now = np.asarray(baseline, dtype=np.float64), np.asarray(current, dtype=np.float64)
    if base.shape != now.shape:
        raise ValueError("paired values must have the same length")
    n = base.size
    if n < 2:
        return None
    sd = float(np.std(now - base, ddof=1))
    if sd == 0.0:
        sd = 1.0
    return (_z(level) + NormalDist().inv_cdf(power)) * sd / math.sqrt(n)
