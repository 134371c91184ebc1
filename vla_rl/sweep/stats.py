"""Statistics over seeds: the Student t quantile and the t-interval of a mean (pure functions).

The comparison table reports a cell's final success rate as the mean over its seeds with a 95%
t-interval (each seed one sample); `vla_rl.eval.stats.wilson_interval` gives the pooled-episode
interval beside it.
"""

from __future__ import annotations

import math
from typing import Sequence

Z975 = 1.959963984540054
"""The 0.975 quantile of the standard normal."""

T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788, 2.1604,
        2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555,
        2.0518, 2.0484, 2.0452, 2.0423)
"""The 0.975 quantile of Student's t for 1..30 degrees of freedom (standard tables, 4 decimals)."""


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with `df` degrees of freedom (two-sided 95%).

    Tabulated up to 30; above, the Cornish-Fisher expansion around the normal quantile (error < 1e-4).
    """
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(T975):
        return T975[df - 1]
    z = Z975
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


def mean_t_interval(values: Sequence[float], low: float | None = 0.0,
                    high: float | None = 1.0) -> tuple[float, float | None, float | None]:
    """(mean, lower, upper) of a 95% t-interval for the mean of `values` (one value per seed).

    The bounds are clipped to [low, high] (a success rate lives in [0, 1]; pass None for no clip).
    With a single value there is no spread to estimate: both bounds are None.
    """
    n = len(values)
    if n == 0:
        raise ValueError("mean_t_interval needs at least one value")
    mean = math.fsum(values) / n
    if n == 1:
        return mean, None, None
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile_975(n - 1) * sd / math.sqrt(n)
    lo, hi = mean - half, mean + half
    if low is not None:
        lo = max(low, lo)
    if high is not None:
        hi = min(high, hi)
    return mean, lo, hi


__all__ = ["t_quantile_975", "mean_t_interval", "T975", "Z975"]
