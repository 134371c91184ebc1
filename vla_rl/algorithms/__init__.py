"""The algorithm layer: pure functions over tensors for advantages, losses and metrics.

No I/O, no config object, no device or worker logic. Importing this package fills the registries
(`ADVANTAGE_ESTIMATORS`, `POLICY_LOSSES`, `KL_ESTIMATORS`, `LOSS_AGGREGATIONS`,
`LOGPROB_GRANULARITIES`, `REWARD_GRANULARITIES`). docs/algorithms.md maps config options to them.
"""

from vla_rl.algorithms.advantages import (
    AdvantageOutput,
    ChunkRewards,
    GroupAdvantages,
    action_mask_from_dones,
    broadcast_trajectory_advantages,
    gae,
    group_ids_from_size,
    grpo_advantages,
    normalize_advantages,
    reduce_chunk_rewards,
    rloo_advantages,
    trajectory_ids,
    trajectory_returns,
    valid_mask,
)
from vla_rl.algorithms.aggregation import loss_weights, weighted_sum
from vla_rl.algorithms.granularity import action_mask_of, expand_to, mask_to_granularity, to_granularity
from vla_rl.algorithms.losses import (
    LossOutput,
    clipped_policy_loss,
    grpo_loss,
    kl_k1,
    kl_k2,
    kl_k3,
    kl_penalty,
    ppo_loss,
    value_loss,
)
from vla_rl.algorithms.metrics import explained_variance, kl_early_stop, mean_metrics, rollout_metrics, tensor_stats
from vla_rl.algorithms.registries import (
    ADVANTAGE_ESTIMATORS,
    KL_ESTIMATORS,
    LOGPROB_GRANULARITIES,
    LOSS_AGGREGATIONS,
    POLICY_LOSSES,
    REWARD_GRANULARITIES,
    AdvantageEstimator,
    Granularity,
    PolicyLoss,
)

__all__ = [
    "ADVANTAGE_ESTIMATORS",
    "KL_ESTIMATORS",
    "LOGPROB_GRANULARITIES",
    "LOSS_AGGREGATIONS",
    "POLICY_LOSSES",
    "REWARD_GRANULARITIES",
    "AdvantageEstimator",
    "AdvantageOutput",
    "ChunkRewards",
    "Granularity",
    "GroupAdvantages",
    "LossOutput",
    "PolicyLoss",
    "action_mask_from_dones",
    "action_mask_of",
    "broadcast_trajectory_advantages",
    "clipped_policy_loss",
    "expand_to",
    "explained_variance",
    "gae",
    "group_ids_from_size",
    "grpo_advantages",
    "grpo_loss",
    "kl_early_stop",
    "kl_k1",
    "kl_k2",
    "kl_k3",
    "kl_penalty",
    "loss_weights",
    "mask_to_granularity",
    "mean_metrics",
    "normalize_advantages",
    "ppo_loss",
    "reduce_chunk_rewards",
    "rloo_advantages",
    "rollout_metrics",
    "tensor_stats",
    "to_granularity",
    "trajectory_ids",
    "trajectory_returns",
    "valid_mask",
    "value_loss",
]
