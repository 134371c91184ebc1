"""Advantage estimators (registered in `ADVANTAGE_ESTIMATORS`) and rollout-shaping helpers."""

from vla_rl.algorithms.advantages.chunk_rewards import ChunkRewards, action_mask_from_dones, reduce_chunk_rewards
from vla_rl.algorithms.advantages.gae import AdvantageOutput, gae
from vla_rl.algorithms.advantages.group import GroupAdvantages, group_ids_from_size, grpo_advantages, rloo_advantages
from vla_rl.algorithms.advantages.trajectory import (
    broadcast_trajectory_advantages,
    normalize_advantages,
    trajectory_ids,
    trajectory_returns,
    valid_mask,
)

__all__ = [
    "AdvantageOutput",
    "ChunkRewards",
    "GroupAdvantages",
    "action_mask_from_dones",
    "broadcast_trajectory_advantages",
    "gae",
    "group_ids_from_size",
    "grpo_advantages",
    "normalize_advantages",
    "reduce_chunk_rewards",
    "rloo_advantages",
    "trajectory_ids",
    "trajectory_returns",
    "valid_mask",
]
