"""Trajectory helpers: masks after the first done, broadcasting, returns, ids, normalisation."""

import pytest
import torch

from vla_rl.algorithms import (
    broadcast_trajectory_advantages,
    normalize_advantages,
    trajectory_ids,
    trajectory_returns,
    valid_mask,
)

F, T_ = False, True


def test_valid_mask_per_chunk_step():
    dones = torch.tensor([[F, F], [T_, F], [F, F], [T_, T_]])  # (T=4, N=2)
    assert valid_mask(dones).tolist() == [[T_, T_], [T_, T_], [F, T_], [F, T_]]


def test_valid_mask_per_action_runs_over_time_then_chunk():
    dones = torch.zeros(3, 1, 2, dtype=torch.bool)  # (T=3, N=1, K=2)
    dones[1, 0, 0] = True
    dones[2, 0, 1] = True
    assert valid_mask(dones)[:, 0].tolist() == [[T_, T_], [T_, F], [F, F]]


def test_broadcast_trajectory_advantages():
    adv = torch.tensor([2.0, -1.0])
    dones = torch.tensor([[F, F], [T_, F], [F, F]])
    per_step, mask = broadcast_trajectory_advantages(adv, dones)
    assert per_step.tolist() == [[2.0, -1.0]] * 3
    assert mask.tolist() == [[T_, T_], [T_, T_], [F, T_]]
    with pytest.raises(ValueError, match="one advantage per environment"):
        broadcast_trajectory_advantages(torch.zeros(3), dones)


def test_trajectory_returns_ignore_padding():
    rewards = torch.tensor([[0.0, 1.0], [1.0, 0.0], [5.0, 2.0]])
    mask = torch.tensor([[T_, T_], [T_, T_], [F, T_]])
    assert trajectory_returns(rewards, mask).tolist() == [1.0, 3.0]
    rewards3 = torch.ones(2, 2, 3)
    mask3 = valid_mask(torch.tensor([[[F, T_, F], [F, F, F]], [[F, F, F], [F, F, F]]]))
    assert trajectory_returns(rewards3, mask3).tolist() == [2.0, 6.0]


def test_trajectory_ids_split_at_dones_and_are_unique_across_envs():
    dones = torch.tensor([[F, F], [T_, F], [F, T_], [T_, F], [F, F]])
    ids = trajectory_ids(dones)
    assert ids[:, 0].tolist() == [0, 0, 1, 1, 2]
    assert ids[:, 1].tolist() == [5, 5, 5, 6, 6]


def test_normalize_advantages_over_masked_entries():
    adv = torch.tensor([1.0, 2.0, 3.0, 100.0], dtype=torch.float64)
    mask = torch.tensor([T_, T_, T_, F])
    out = normalize_advantages(adv, mask, eps=0.0)
    assert out.tolist() == pytest.approx([-1.0, 0.0, 1.0, 0.0])  # std of [1,2,3] with Bessel = 1
    assert normalize_advantages(adv, torch.zeros(4, dtype=torch.bool), eps=1e-6).tolist() == [0.0] * 4
    with pytest.raises(ValueError, match="advantages requires grad"):
        normalize_advantages(adv.clone().requires_grad_(), mask, eps=1e-6)
