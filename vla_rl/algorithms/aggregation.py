"""Loss aggregation: how per-element losses are averaged, as weights that sum to 1.

Each mode turns a bool mask (N, ...) (first dim: samples) into weights of the same shape; the loss
is `(weights * elementwise_loss).sum()`. Masked elements get weight 0; an all-False mask gives all
zeros (loss 0, no NaN), which happens when every group of a minibatch was filtered out.

- "token_mean": every unmasked element weighs the same (mean over all of them).
- "seq_mean":   mean over each sample's unmasked elements, then mean over samples with any.
- "traj_equal": mean over each trajectory's unmasked elements (all samples sharing a `traj_ids`
  entry), then mean over trajectories with any: long and short episodes count equally.

Weights are computed over whatever batch is passed in. For "traj_equal" to weigh whole
trajectories equally, minibatches should hold whole trajectories (split by trajectory, not by step).
"""

from __future__ import annotations

import torch

from vla_rl.algorithms.registries import LOSS_AGGREGATIONS


def _per_sample_counts(mask: torch.Tensor) -> torch.Tensor:
    return mask.reshape(mask.shape[0], -1).sum(-1)


def _normalise(weights: torch.Tensor) -> torch.Tensor:
    return weights / weights.sum().clamp_min(1e-12)


@LOSS_AGGREGATIONS.register("token_mean")
def _token_mean(mask: torch.Tensor, traj_ids: torch.Tensor | None) -> torch.Tensor:
    return _normalise(mask.double())


@LOSS_AGGREGATIONS.register("seq_mean")
def _seq_mean(mask: torch.Tensor, traj_ids: torch.Tensor | None) -> torch.Tensor:
    counts = _per_sample_counts(mask).clamp_min(1).double()
    return _normalise(mask.double() / counts.reshape(-1, *([1] * (mask.dim() - 1))))


@LOSS_AGGREGATIONS.register("traj_equal")
def _traj_equal(mask: torch.Tensor, traj_ids: torch.Tensor | None) -> torch.Tensor:
    if traj_ids is None:
        raise ValueError("loss_agg='traj_equal' needs traj_ids (N,): the trajectory of each sample "
                         "(env index for fixed-length episodes, `trajectory_ids(dones)` with partial resets)")
    if traj_ids.shape != mask.shape[:1]:
        raise ValueError(f"traj_ids has shape {tuple(traj_ids.shape)}, expected ({mask.shape[0]},)")
    uniq, index = torch.unique(traj_ids, return_inverse=True)
    per_traj = torch.zeros(uniq.numel(), dtype=torch.float64, device=mask.device)
    per_traj.index_add_(0, index, _per_sample_counts(mask).double())
    counts = per_traj[index].clamp_min(1)
    return _normalise(mask.double() / counts.reshape(-1, *([1] * (mask.dim() - 1))))


def loss_weights(
    mask: torch.Tensor, mode: str, traj_ids: torch.Tensor | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Weights (same shape as `mask`, summing to 1, or all 0) for aggregation `mode` (module docstring).

    Computed in float64 and returned as `dtype` (the losses pass float32, or float64 for float64 inputs).
    """
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor, got {mask.dtype}; convert with `.bool()`")
    return LOSS_AGGREGATIONS.get(mode)(mask, traj_ids).to(dtype)


def weighted_sum(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum(weights * values), with entries of weight 0 contributing exactly 0 (even if NaN/inf)."""
    return torch.where(weights > 0, values * weights, torch.zeros_like(values)).sum()
