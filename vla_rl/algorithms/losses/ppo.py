"""The PPO actor-critic loss: the actor's loss `actor.actor_loss` plus a value loss.

Adds the term value_loss (= vf_coef * value error, see `value.value_loss`) and the diagnostics
vf_loss (unweighted) and value_clip_fraction. Values are one per sample (chunk-step), aggregated
with the same `loss_agg` over the samples that have any valid action. It reads `ACTOR_INPUTS` and
`VALUE_INPUTS`.
"""

from __future__ import annotations

import torch

from vla_rl.algorithms.aggregation import loss_weights
from vla_rl.algorithms.checks import require_detached, require_shape
from vla_rl.algorithms.granularity import action_mask_of
from vla_rl.algorithms.losses.actor import ACTOR_INPUTS, actor_loss
from vla_rl.algorithms.losses.output import LossOutput, to_floats
from vla_rl.algorithms.losses.value import VALUE_INPUTS, value_loss
from vla_rl.algorithms.registries import POLICY_LOSSES, PolicyLoss


def ppo_loss(
    *,
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    action_mask: torch.Tensor,
    entropy: torch.Tensor | None,
    ref_logprobs: torch.Tensor | None,
    traj_ids: torch.Tensor | None,
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    logprob_granularity: str,
    loss_agg: str,
    clip_ratio: float,
    clip_ratio_high: float | None,
    dual_clip: float | None,
    value_clip: float | None,
    huber_delta: float | None,
    vf_coef: float,
    entropy_coef: float,
    kl_coef: float,
    kl_estimator: str,
) -> LossOutput:
    """PPO loss of one minibatch: inputs as `actor_loss`, plus values (N,) from `policy.evaluate`
    (with grad), old_values (N,) stored from `policy.act` and returns (N,) from `gae`."""
    N = logprobs.shape[0]
    require_shape("values", values, (N,), "one value per sample from policy.evaluate (a policy with a value head)")
    require_shape("old_values", old_values, (N,), "the rollout's values (ActOutput.values)")
    require_shape("returns", returns, (N,), "value targets from gae")
    require_detached("old_values", old_values, "store ActOutput.values detached")
    require_detached("returns", returns, "compute returns from detached rollout tensors")
    actor = actor_loss(
        logprobs=logprobs, old_logprobs=old_logprobs, advantages=advantages, action_mask=action_mask,
        entropy=entropy, ref_logprobs=ref_logprobs, traj_ids=traj_ids, logprob_granularity=logprob_granularity,
        loss_agg=loss_agg, clip_ratio=clip_ratio, clip_ratio_high=clip_ratio_high,
        dual_clip=dual_clip, entropy_coef=entropy_coef, kl_coef=kl_coef, kl_estimator=kl_estimator,
    )
    sample_mask = action_mask_of(action_mask, N, logprobs.shape[1]).any(-1)
    weights = loss_weights(sample_mask, loss_agg, traj_ids, torch.promote_types(values.dtype, torch.float32))
    vf, stats = value_loss(values, old_values, returns, weights, value_clip=value_clip, huber_delta=huber_delta)
    stats["vf_loss"] = vf.detach()
    terms = {**actor.terms, "value_loss": vf_coef * vf}
    return LossOutput(terms, {**actor.metrics, **to_floats(stats)})


POLICY_LOSSES.register("ppo")(PolicyLoss(fn=ppo_loss, inputs=ACTOR_INPUTS | VALUE_INPUTS))
