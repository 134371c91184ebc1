"""GRPO and RLOO group advantages: hand values with ties, filtering, and hypothesis properties."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vla_rl.algorithms import ADVANTAGE_ESTIMATORS, group_ids_from_size, grpo_advantages, rloo_advantages

RETURNS = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0], dtype=torch.float64)
GROUPS = group_ids_from_size(12, 4)


def test_grpo_hand_values_with_tie_filtered():
    out = grpo_advantages(RETURNS, GROUPS, std_normalize=True, eps=0.0, filter_equal=True)
    s = 0.5 / math.sqrt(1 / 3)  # group 0: mean .5, Bessel std sqrt(1/3)
    expected = [s, -s, -s, s, 0, 0, 0, 0, -0.5, -0.5, 1.5, -0.5]  # group 2: mean .25, std .5
    assert out.advantages.tolist() == pytest.approx(expected)
    assert out.keep.tolist() == [True] * 4 + [False] * 4 + [True] * 4
    assert out.filtered_fraction == pytest.approx(1 / 3)


def test_grpo_without_filter_keeps_tied_group_at_zero():
    out = grpo_advantages(RETURNS, GROUPS, std_normalize=True, eps=1e-6, filter_equal=False)
    assert out.keep.all() and out.filtered_fraction == 0.0
    assert out.advantages[4:8].tolist() == [0.0] * 4


def test_grpo_without_std_division():
    out = grpo_advantages(RETURNS, GROUPS, std_normalize=False, eps=1e-6, filter_equal=True)
    assert out.advantages.tolist() == pytest.approx([0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0, -0.25, -0.25, 0.75, -0.25])


def test_eps_is_added_to_std():
    r = torch.tensor([0.0, 2.0], dtype=torch.float64)  # mean 1, Bessel std sqrt(2)
    out = grpo_advantages(r, torch.tensor([5, 5]), std_normalize=True, eps=0.5, filter_equal=False)
    assert out.advantages.tolist() == pytest.approx([-1 / (math.sqrt(2) + 0.5), 1 / (math.sqrt(2) + 0.5)])


def test_rloo_hand_values():
    out = rloo_advantages(RETURNS, GROUPS, std_normalize=False, eps=1e-6, filter_equal=True)
    # group 0, trajectory 0: 1 - (0 + 0 + 1)/3 = 2/3; trajectory 1: 0 - (1 + 0 + 1)/3 = -2/3
    assert out.advantages[:4].tolist() == pytest.approx([2 / 3, -2 / 3, -2 / 3, 2 / 3])
    assert out.advantages[8:].tolist() == pytest.approx([-1 / 3, -1 / 3, 1.0, -1 / 3])
    assert out.keep[4:8].tolist() == [False] * 4


def reference_rloo(returns, groups):
    out = []
    for i, (r, g) in enumerate(zip(returns.tolist(), groups.tolist())):
        others = [x for j, (x, h) in enumerate(zip(returns.tolist(), groups.tolist())) if h == g and j != i]
        out.append(r - sum(others) / len(others))
    return out


def test_rloo_matches_loop_for_unequal_groups_and_scattered_ids():
    g = torch.Generator().manual_seed(1)
    returns = torch.rand(9, generator=g, dtype=torch.float64)
    groups = torch.tensor([7, 3, 7, 3, 9, 7, 9, 9, 3])
    out = rloo_advantages(returns, groups, std_normalize=False, eps=1e-6, filter_equal=True)
    assert out.advantages.tolist() == pytest.approx(reference_rloo(returns, groups))
    scaled = rloo_advantages(returns, groups, std_normalize=True, eps=1e-6, filter_equal=True)
    std7 = returns[groups == 7].std()
    assert scaled.advantages[0].item() == pytest.approx(out.advantages[0].item() / (std7.item() + 1e-6))


def test_single_trajectory_group_is_refused():
    with pytest.raises(ValueError, match=r"groups \[4\] have a single trajectory"):
        grpo_advantages(torch.tensor([1.0, 0.0, 1.0]), torch.tensor([1, 1, 4]), std_normalize=True, eps=1e-6, filter_equal=True)
    with pytest.raises(ValueError, match="group_ids must be an integer"):
        grpo_advantages(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]), std_normalize=True, eps=1e-6, filter_equal=True)
    with pytest.raises(ValueError, match="returns requires grad"):
        rloo_advantages(torch.tensor([1.0, 0.0], requires_grad=True), torch.tensor([1, 1]), std_normalize=True, eps=1e-6, filter_equal=True)


def test_group_ids_from_size():
    assert group_ids_from_size(6, 3).tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="cannot be split"):
        group_ids_from_size(7, 2)


@pytest.mark.parametrize("name", ["grpo", "rloo"])
def test_registered_as_group_estimators(name):
    entry = ADVANTAGE_ESTIMATORS.get(name)
    assert not entry.needs_critic and entry.inputs == "group"


@settings(max_examples=60, deadline=None)
@given(
    group_size=st.integers(2, 5),
    num_groups=st.integers(1, 5),
    data=st.data(),
    estimator=st.sampled_from(["grpo", "rloo"]),
    std_normalize=st.booleans(),
)
def test_kept_groups_have_zero_mean_and_ties_are_filtered(group_size, num_groups, data, estimator, std_normalize):
    values = data.draw(st.lists(st.integers(0, 2), min_size=group_size * num_groups, max_size=group_size * num_groups))
    returns = torch.tensor(values, dtype=torch.float64)
    groups = group_ids_from_size(len(values), group_size)
    out = ADVANTAGE_ESTIMATORS.get(estimator).fn(returns, groups, std_normalize=std_normalize, eps=1e-6, filter_equal=True)
    equal_groups = 0
    for g in range(num_groups):
        sel = groups == g
        tied = returns[sel].max() == returns[sel].min()
        equal_groups += int(tied)
        assert bool(out.keep[sel].all()) == (not tied) and bool(out.keep[sel].any()) == (not tied)
        if tied:
            assert (out.advantages[sel] == 0).all()
        else:
            assert abs(out.advantages[sel].mean().item()) < 1e-9
            a, r = out.advantages[sel], returns[sel]  # advantages order trajectories as returns do
            assert torch.equal(torch.sign(a[:, None] - a[None]), torch.sign(r[:, None] - r[None]))
    assert out.filtered_fraction == pytest.approx(equal_groups / num_groups)
