"""Confidence intervals for evaluation scores, seeded so a recomputation gives the same bounds.

`bootstrap_ci` resamples items with replacement and takes the percentile interval of the mean.
`paired_bootstrap_ci` does the same for per-item differences between two evaluations on the same
items (a regression check): resampling pairs keeps the correlation between the two models' items,
which makes the interval much tighter than two separate intervals would suggest. Identical
predictions give exactly [0, 0].
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95
SEED = 0


def _percentile_interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_ci(values, *, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = SEED):
    """(low, high) of the mean of `values` (e.g. 1 for a correct item, 0 otherwise); None when empty."""
    data = np.asarray(values, dtype=np.float64)
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
