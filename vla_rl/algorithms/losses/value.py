"""The critic's loss: squared (or Huber) error to the returns, with optional PPO value clipping.

    e(v)  = 0.5 (v - R)^2, or huber(v - R, delta) when huber_delta is set (equal to 0.5 x^2 for |x| <= delta)
    L     = e(v)                                                  without value_clip
    L     = max(e(v), e(v_old + clip(v - v_old, -c, c)))          with value_clip = c

The clipped form (PPO2 / cleanrl) keeps the new value within c of the rollout's value estimate
unless that increases the error; it is in the units of the returns, so scale c with the rewards.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vla_rl.algorithms.aggregation import weighted_sum
from vla_rl.algorithms.registries import LossInputs


def _error(values: torch.Tensor, returns: torch.Tensor, huber_delta: float | None) -> torch.Tensor:
    if huber_delta is None:
        return 0.5 * (values - returns) ** 2
    return F.huber_loss(values, returns, reduction="none", delta=huber_delta)


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    weights: torch.Tensor,
    *,
    value_clip: float | None,
    huber_delta: float | None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Aggregated value loss (see module docstring) and diagnostics (value_clip_fraction).

    values: (N,) from the policy, with grad; old_values, returns: (N,) stored; weights: (N,).
    """
    if not (values.shape == old_values.shape == returns.shape == weights.shape):
        raise ValueError(f"values {tuple(values.shape)}, old_values {tuple(old_values.shape)}, "
                         f"returns {tuple(returns.shape)} and weights {tuple(weights.shape)} must match (N,)")
    used = weights > 0
    values = torch.where(used, values, returns)  # masked entries: zero error, zero gradient
    loss = _error(values, returns, huber_delta)
    clipped_fraction = values.new_zeros(())
    if value_clip is not None:
        clipped_values = old_values + (values - old_values).clamp(-value_clip, value_clip)
        loss_clipped = _error(clipped_values, returns, huber_delta)
        with torch.no_grad():
            clipped_fraction = ((loss_clipped > loss) & used).sum() / used.sum().clamp_min(1)
        loss = torch.maximum(loss, loss_clipped)
    return weighted_sum(loss, weights), {"value_clip_fraction": clipped_fraction}


VALUE_INPUTS = LossInputs(
    reads={"old_values": "values", "returns": "returns"},
    evaluates=("values",),
    hyperparameters=("value_clip", "huber_delta", "vf_coef"),
)
"""What the value term of a loss reads (`ppo.ppo_loss`): the evaluated values, the rollout's values and the
returns, value clip and Huber delta for `value_loss`, and vf_coef, the term's weight."""
