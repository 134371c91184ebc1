"""Wilson intervals and McNemar's exact test against values computed by hand."""

from __future__ import annotations

import math

import pytest

from vla_rl.eval.stats import mcnemar_exact, wilson_interval


def test_wilson_matches_closed_form():
    # 8/10 at z=1.96: centre (0.8 + 0.19208)/1.38416, half 1.96*sqrt(0.016 + 0.0009604)/1.38416
    low, high = wilson_interval(8, 10, z=1.96)
    centre = (0.8 + 1.96**2 / 20) / (1 + 1.96**2 / 10)
    half = 1.96 * math.sqrt(0.8 * 0.2 / 10 + 1.96**2 / 400) / (1 + 1.96**2 / 10)
    assert low == pytest.approx(centre - half)
    assert high == pytest.approx(centre + half)
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)


def test_wilson_edges():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(0, 8)
    assert low == 0.0 and 0.3 < high < 0.35
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_mcnemar_exact_values():
    assert mcnemar_exact(0, 0) == 1.0
    # b=0, c=6: two-sided 2 * (1/64)
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    # b=2, c=8: 2 * P(X<=2), X~Bin(10, .5) = 2 * 56/1024
    assert mcnemar_exact(2, 8) == pytest.approx(112 / 1024)
    assert mcnemar_exact(5, 5) == 1.0
