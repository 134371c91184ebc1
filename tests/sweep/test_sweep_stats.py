"""The statistics behind the table and plots, against references computed another way."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vla_rl.sweep.plots import mean_curve
from vla_rl.sweep.stats import T975, mean_t_interval, t_quantile_975


def test_t_quantile_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in [*range(1, 40), 50, 100, 1000]:
        assert t_quantile_975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=1e-4), df


def test_t_quantile_is_continuous_across_the_table_edge():
    edge = len(T975)
    assert t_quantile_975(edge) > t_quantile_975(edge + 1) > 1.959964
    assert t_quantile_975(edge) - t_quantile_975(edge + 1) < 0.01
    with pytest.raises(ValueError):
        t_quantile_975(0)


def test_mean_t_interval_against_the_textbook_formula():
    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 12):
        values = list(rng.uniform(0.3, 0.7, size=n))
        mean, low, high = mean_t_interval(values, low=None, high=None)
        sem = np.std(values, ddof=1) / math.sqrt(n)
        assert mean == pytest.approx(np.mean(values))
        assert high - mean == pytest.approx(mean - low)
        assert (high - mean) / sem == pytest.approx(t_quantile_975(n - 1))


def test_mean_t_interval_clips_to_rates_and_needs_two_values():
    mean, low, high = mean_t_interval([0.0, 1.0])
    assert (mean, low, high) == (0.5, 0.0, 1.0)
    assert mean_t_interval([0.25]) == (0.25, None, None)
    assert mean_t_interval([0.4, 0.4, 0.4]) == (pytest.approx(0.4), pytest.approx(0.4), pytest.approx(0.4))


def test_mean_curve_interpolates_each_seed_onto_the_shared_range():
    a = ([0, 100, 200], [0.0, 0.5, 1.0])
    b = ([0, 120, 180], [0.0, 0.3, 0.6])
    x, mean, low, high = mean_curve([a, b])
    assert list(x) == [0, 100, 120, 180]  # union of points up to the shorter seed's end
    for xi, mi in zip(x, mean):
        expected = (np.interp(xi, *a) + np.interp(xi, *b)) / 2
        assert mi == pytest.approx(expected)
    for i, xi in enumerate(x):
        seeds = [np.interp(xi, *a), np.interp(xi, *b)]
        assert (low[i], high[i]) == pytest.approx((min(seeds), max(seeds)))
    x1, m1, l1, h1 = mean_curve([a])
    assert list(m1) == a[1] and list(l1) == list(h1) == a[1]
