"""Helpers over whole trajectories in a (T, N) rollout: masks, returns, ids, broadcasting.

Fixed-length episodes (GRPO style, no auto-reset) keep stepping finished environments; everything
after the first done is padding. `valid_mask` marks the steps that count (up to and including the
first done), `broadcast_trajectory_advantages` spreads one advantage per trajectory over its steps.
Done tensors are (T, N) per chunk-step or (T, N, K) per action; time runs over T, then K.
"""

from __future__ import annotations

from typing import Callable

import torch

from vla_rl.algorithms.checks import require_bool, require_detached, require_shape


def _env_major(x: torch.Tensor) -> torch.Tensor:
    """(T, N, *rest) -> (N, T * prod(rest)) in time order."""
    return x.movedim(1, 0).reshape(x.shape[1], -1)


def valid_mask(dones: torch.Tensor) -> torch.Tensor:
    """bool, same shape as `dones` (T, N) or (T, N, K): True up to and including the first done."""
    require_bool("dones", dones)
    if dones.dim() not in (2, 3):
        raise ValueError(f"dones has shape {tuple(dones.shape)}, expected (T, N) or (T, N, K)")
    flat = _env_major(dones).long()
    before = flat.cumsum(-1) - flat
    T, N = dones.shape[:2]
    return (before == 0).reshape(N, T, *dones.shape[2:]).movedim(0, 1)


def broadcast_trajectory_advantages(advantages: torch.Tensor, dones: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-trajectory advantages (N,) -> ((T, N) advantages, loss mask shaped like `dones`).

    One trajectory per environment (fixed-length episodes). The mask is `valid_mask(dones)`;
    with (T, N, K) dones it is the per-action mask to pass to the loss as an (N', K) mask after
    flattening T and N. Multiply a group filter's `keep` (N,) into the mask: `mask & keep[None]`
    (or `keep[None, :, None]` for (T, N, K)).
    """
    require_detached("advantages", advantages)
    require_shape("advantages", advantages, (dones.shape[1],), "one advantage per environment (N,)")
    mask = valid_mask(dones)
    return advantages[None].expand(dones.shape[0], -1), mask


def trajectory_returns(rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N,) undiscounted sum of the valid rewards of each environment's trajectory.

    rewards: (T, N) or (T, N, K); mask: bool of the same shape (`valid_mask`).
    """
    require_bool("mask", mask)
    if rewards.shape != mask.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)} and mask {tuple(mask.shape)} must have one shape")
    return _env_major(torch.where(mask, rewards, torch.zeros_like(rewards))).sum(-1)


def trajectory_ids(dones: torch.Tensor) -> torch.Tensor:
    """(T, N) int64 id of the episode segment each chunk-step belongs to, unique over the window.

    With partial resets an environment's column holds several episodes; a new id starts after
    each done. Use as `traj_ids` for `loss_agg="traj_equal"`.
    """
    require_bool("dones", dones)
    require_shape("dones", dones, (None, None), "(T, N) done = terminated | truncated per chunk-step")
    T, N = dones.shape
    d = dones.long()
    episode = d.cumsum(0) - d
    return torch.arange(N, device=dones.device)[None] * T + episode


def normalize_advantages(advantages: torch.Tensor, mask: torch.Tensor, eps: float,
                         all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """(A - mean) / (std + eps) over the entries where `mask` is True; 0 elsewhere.

    Statistics over the whole rollout batch (call once before splitting minibatches); std with
    Bessel's correction, 0 when fewer than two entries count. `all_reduce` (a sum over the ranks of
    a data-parallel run) makes the statistics those of every rank's batch together.
    """
    require_bool("mask", mask)
    require_detached("advantages", advantages)
    if advantages.shape != mask.shape:
        raise ValueError(f"advantages {tuple(advantages.shape)} and mask {tuple(mask.shape)} must have one shape")
    n = mask.sum()
    zero = torch.zeros_like(advantages)
    total = torch.where(mask, advantages, zero).sum()
    if all_reduce is not None:
        n, total = all_reduce(torch.stack([n.to(total.dtype), total]))
    mean = total / n.clamp_min(1)
    squares = torch.where(mask, (advantages - mean) ** 2, zero).sum()
    if all_reduce is not None:
        squares = all_reduce(squares)
    var = squares / (n - 1).clamp_min(1)
    return torch.where(mask, (advantages - mean) / (var.sqrt() + eps), zero)
