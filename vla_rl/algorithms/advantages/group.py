"""Group-relative advantages (GRPO, RLOO) from per-trajectory returns.

Trajectories whose environments were reset from the same reset id form a group; each trajectory's
advantage compares its return with the others of its group, so no critic is needed. Both
estimators share one signature:

    fn(returns (B,), group_ids (B,), *, std_normalize, eps, filter_equal) -> GroupAdvantages

- GRPO: A_i = (R_i - mean_g) / (std_g + eps), std with Bessel's correction (n - 1), as in the
  GRPO reference implementations; `std_normalize=False` gives A_i = R_i - mean_g (Dr. GRPO).
- RLOO: A_i = R_i - mean_{j in g, j != i} R_j = n/(n-1) (R_i - mean_g); with `std_normalize=True`
  it is also divided by (std_g + eps).

A group whose returns are all exactly equal (all success or all failure) carries no signal. With
`filter_equal=True` its trajectories get keep=False and advantage 0, and `filtered_fraction` (the
fraction of groups dropped) is reported; with False they are kept (their advantage is 0 anyway,
but they still count in the loss normalisation, entropy and KL terms).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from vla_rl.algorithms.checks import require_detached, require_shape
from vla_rl.algorithms.registries import ADVANTAGE_ESTIMATORS, AdvantageEstimator


class GroupAdvantages(NamedTuple):
    advantages: torch.Tensor
    """(B,) advantage of each trajectory (0 where not kept)."""
    keep: torch.Tensor
    """(B,) bool, False for trajectories of filtered groups; multiply into the loss mask."""
    filtered_fraction: float
    """Fraction of groups filtered out (0.0 when filtering is off)."""


class _Groups(NamedTuple):
    index: torch.Tensor  # (B,) group index 0..G-1 of each trajectory
    size: torch.Tensor  # (B,) size of each trajectory's group
    mean: torch.Tensor  # (B,) group mean return
    std: torch.Tensor  # (B,) group std (Bessel)
    equal: torch.Tensor  # (G,) bool, all returns in the group equal


def _group_stats(returns: torch.Tensor, group_ids: torch.Tensor) -> _Groups:
    require_shape("returns", returns, (None,), "one scalar return per trajectory")
    require_shape("group_ids", group_ids, returns.shape, "one group id per trajectory")
    require_detached("returns", returns)
    if group_ids.is_floating_point():
        raise ValueError("group_ids must be an integer tensor (the reset id of each trajectory)")
    _, index, counts = torch.unique(group_ids, return_inverse=True, return_counts=True)
    if (counts < 2).any():
        lonely = torch.unique(group_ids)[counts < 2].tolist()
        raise ValueError(f"groups {lonely} have a single trajectory; group advantages need "
                         "group_size >= 2 environments reset from each reset id")
    G = counts.numel()
    size = counts[index].to(returns.dtype)
    total = torch.zeros(G, dtype=returns.dtype, device=returns.device).index_add_(0, index, returns)
    mean = (total / counts.to(returns.dtype))[index]
    sq = torch.zeros_like(total).index_add_(0, index, (returns - mean) ** 2)
    std = (sq / (counts - 1).to(returns.dtype)).sqrt()[index]
    hi = torch.full_like(total, -torch.inf).scatter_reduce(0, index, returns, "amax")
    lo = torch.full_like(total, torch.inf).scatter_reduce(0, index, returns, "amin")
    return _Groups(index, size, mean, std, hi == lo)


def _finish(advantages: torch.Tensor, groups: _Groups, filter_equal: bool) -> GroupAdvantages:
    if not filter_equal:
        return GroupAdvantages(advantages, torch.ones_like(advantages, dtype=torch.bool), 0.0)
    keep = ~groups.equal[groups.index]
    advantages = torch.where(keep, advantages, torch.zeros_like(advantages))
    return GroupAdvantages(advantages, keep, groups.equal.float().mean().item())


def grpo_advantages(
    returns: torch.Tensor, group_ids: torch.Tensor, *, std_normalize: bool, eps: float, filter_equal: bool
) -> GroupAdvantages:
    """GRPO: return minus group mean, divided by (group std + eps) when `std_normalize`."""
    g = _group_stats(returns, group_ids)
    adv = returns - g.mean
    if std_normalize:
        adv = adv / (g.std + eps)
    return _finish(adv, g, filter_equal)


def rloo_advantages(
    returns: torch.Tensor, group_ids: torch.Tensor, *, std_normalize: bool, eps: float, filter_equal: bool
) -> GroupAdvantages:
    """RLOO: return minus the mean of the other trajectories of its group (leave-one-out)."""
    g = _group_stats(returns, group_ids)
    adv = (returns - g.mean) * g.size / (g.size - 1)
    if std_normalize:
        adv = adv / (g.std + eps)
    return _finish(adv, g, filter_equal)


def group_ids_from_size(num_trajectories: int, group_size: int) -> torch.Tensor:
    """(B,) group ids for environments laid out group by group: [0]*group_size + [1]*group_size ..."""
    if group_size < 2 or num_trajectories % group_size:
        raise ValueError(f"{num_trajectories} trajectories cannot be split into groups of {group_size}: "
                         "use group_size >= 2 dividing the number of environments")
    return torch.arange(num_trajectories) // group_size


ADVANTAGE_ESTIMATORS.register("grpo")(AdvantageEstimator(fn=grpo_advantages, needs_critic=False, inputs="group"))
ADVANTAGE_ESTIMATORS.register("rloo")(AdvantageEstimator(fn=rloo_advantages, needs_critic=False, inputs="group"))
