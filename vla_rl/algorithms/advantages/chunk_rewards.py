"""From per-step rewards inside an action chunk to one reward and one discount per chunk-step.

The critic sees only the observation at the start of a chunk, so advantages are always per
chunk-step; the reward granularity decides how the K rewards inside a chunk are combined:

- "chunk": the chunk is one time step. Reward = plain sum of the executed steps' rewards; the
  discount to the next chunk is `gamma`. (gamma and lambda count chunk-steps.)
- "action": every executed primitive step is a time step. Reward = sum_k gamma^k r_k over the
  executed steps; the discount to the next chunk is gamma^n, n = number of steps executed (K, or
  fewer when the episode ended inside the chunk). This is the semi-MDP return of the chunk, so
  gamma means the same per second of control as without chunking. lambda still applies per chunk.

Steps after the first done inside a chunk were not executed (the environment stops early); their
rewards are ignored and `action_mask_from_dones` marks their actions invalid for the loss.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from vla_rl.algorithms.checks import require_bool
from vla_rl.algorithms.registries import REWARD_GRANULARITIES


class ChunkRewards(NamedTuple):
    rewards: torch.Tensor
    """(...,) one reward per chunk-step."""
    discounts: torch.Tensor
    """(...,) discount from this chunk-step to the next; pass as `gamma` to `gae`."""
    terminated: torch.Tensor
    """(...,) bool, an executed step of the chunk terminated."""
    truncated: torch.Tensor
    """(...,) bool, an executed step of the chunk was truncated."""


def action_mask_from_dones(terminated: torch.Tensor, truncated: torch.Tensor) -> torch.Tensor:
    """bool (..., K): True for the actions executed, i.e. up to and including the first done."""
    require_bool("terminated", terminated)
    require_bool("truncated", truncated)
    done = (terminated | truncated).long()
    dones_before = done.cumsum(-1) - done
    return dones_before == 0


@REWARD_GRANULARITIES.register("chunk")
def _chunk_level(rewards: torch.Tensor, executed: torch.Tensor, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    total = torch.where(executed, rewards, torch.zeros_like(rewards)).sum(-1)
    return total, torch.full_like(total, gamma)


@REWARD_GRANULARITIES.register("action")
def _action_level(rewards: torch.Tensor, executed: torch.Tensor, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    K = rewards.shape[-1]
    powers = gamma ** torch.arange(K, dtype=rewards.dtype, device=rewards.device)
    total = torch.where(executed, rewards * powers, torch.zeros_like(rewards)).sum(-1)
    steps = executed.sum(-1).to(rewards.dtype)
    return total, torch.as_tensor(gamma, dtype=rewards.dtype, device=rewards.device) ** steps


def reduce_chunk_rewards(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    granularity: str,
) -> ChunkRewards:
    """Combine (..., K) per-step rewards and done flags into per-chunk-step ones (module docstring).

    `granularity` is "chunk" or "action" (`REWARD_GRANULARITIES`).
    """
    if rewards.shape != terminated.shape or rewards.shape != truncated.shape:
        raise ValueError(
            f"rewards {tuple(rewards.shape)}, terminated {tuple(terminated.shape)} and truncated "
            f"{tuple(truncated.shape)} must share one (..., K) shape (ChunkStepResult fields)"
        )
    executed = action_mask_from_dones(terminated, truncated)
    total, discounts = REWARD_GRANULARITIES.get(granularity)(rewards, executed, gamma)
    return ChunkRewards(total, discounts, (terminated & executed).any(-1), (truncated & executed).any(-1))
