"""The actor's loss: clipped objective + entropy bonus + KL penalty, critic-free.

Registered as "grpo" and "rloo" (the group estimators differ, the loss does not) and the actor part
of "ppo" (`ppo.ppo_loss`). `ACTOR_INPUTS` declares what it reads.

Inputs are per token as the policy returns them, (N, K, A); the ratio is taken at
`logprob_granularity` (see `granularity`). Entropy and KL are always per token and aggregated with
the same `loss_agg`, so `entropy_coef` and `kl_coef` mean the same whatever the ratio granularity.
Terms: policy_loss, entropy_loss (= -entropy_coef * entropy), kl_loss (= kl_coef * KL).
"""

from __future__ import annotations

import torch

from vla_rl.algorithms.aggregation import loss_weights, weighted_sum
from vla_rl.algorithms.checks import require_detached, require_shape
from vla_rl.algorithms.granularity import action_mask_of, expand_to, mask_to_granularity, to_granularity
from vla_rl.algorithms.losses.kl import kl_penalty
from vla_rl.algorithms.losses.output import LossOutput, to_floats
from vla_rl.algorithms.losses.policy import clipped_policy_loss
from vla_rl.algorithms.registries import POLICY_LOSSES, LossInputs, PolicyLoss


def actor_loss(
    *,
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    action_mask: torch.Tensor,
    entropy: torch.Tensor | None,
    ref_logprobs: torch.Tensor | None,
    traj_ids: torch.Tensor | None,
    logprob_granularity: str,
    loss_agg: str,
    clip_ratio: float,
    clip_ratio_high: float | None,
    dual_clip: float | None,
    entropy_coef: float,
    kl_coef: float,
    kl_estimator: str,
) -> LossOutput:
    """Critic-free clipped loss of one minibatch of N samples (chunk-steps).

    logprobs (N, K, A) from `policy.evaluate` (with grad); old_logprobs (N, K, A) stored from
    `policy.act`; advantages (N,) per sample; action_mask bool (N,) per sample or (N, K) per action;
    entropy (N, K, A) or None when entropy_coef == 0; ref_logprobs (N, K, A) from the frozen
    reference, given exactly when kl_coef != 0; traj_ids (N,) for loss_agg="traj_equal".
    """
    require_shape("logprobs", logprobs, (None, None, None), "per-token log-probs (N, K, A) from policy.evaluate")
    N, K, A = logprobs.shape
    require_shape("old_logprobs", old_logprobs, (N, K, A), "the rollout's per-token log-probs (ActOutput.logprobs)")
    require_shape("advantages", advantages, (N,), "one advantage per sample (chunk-step)")
    require_detached("old_logprobs", old_logprobs, "store ActOutput.logprobs detached (act() runs under no_grad)")
    require_detached("advantages", advantages, "compute advantages from detached rollout tensors")
    action_mask = action_mask_of(action_mask, N, K)

    lp = to_granularity(logprobs, logprob_granularity, action_mask)
    old = to_granularity(old_logprobs, logprob_granularity, action_mask)
    dtype = torch.promote_types(logprobs.dtype, torch.float32)
    weights = loss_weights(mask_to_granularity(action_mask, logprob_granularity, A), loss_agg, traj_ids, dtype)
    pg, stats = clipped_policy_loss(lp, old, expand_to(advantages, lp), weights, clip_ratio=clip_ratio,
                                    clip_ratio_high=clip_ratio_high, dual_clip=dual_clip)
    stats["pg_loss"] = pg.detach()
    zero = pg.new_zeros(())
    terms = {"policy_loss": pg, "entropy_loss": zero, "kl_loss": zero}

    token_mask = mask_to_granularity(action_mask, "token", A)
    token_weights = loss_weights(token_mask, loss_agg, traj_ids, dtype) if (entropy is not None or kl_coef) else None
    if entropy is None and entropy_coef != 0:
        raise ValueError(f"entropy_coef={entropy_coef} needs entropy (N, K, A) from policy.evaluate")
    if entropy is not None:
        require_shape("entropy", entropy, (N, K, A), "per-token entropy from policy.evaluate")
        ent = weighted_sum(torch.where(token_mask, entropy, torch.zeros_like(entropy)), token_weights)
        stats["entropy"] = ent.detach()
        if entropy_coef != 0:
            terms["entropy_loss"] = -entropy_coef * ent
    if kl_coef == 0 and ref_logprobs is not None:
        raise ValueError("ref_logprobs given but kl_coef is 0: skip the reference forward pass (pass None)")
    if kl_coef != 0:
        if ref_logprobs is None:
            raise ValueError(f"kl_coef={kl_coef} needs ref_logprobs (N, K, A) from the frozen reference policy")
        kl = kl_penalty(logprobs, ref_logprobs, token_weights, kl_estimator)
        stats["kl"] = kl.detach()
        terms["kl_loss"] = kl_coef * kl
    return LossOutput(terms, to_floats(stats))


ACTOR_INPUTS = LossInputs(
    reads={key: key for key in ("old_logprobs", "advantages", "action_mask", "traj_ids")},
    evaluates=("logprobs", "entropy"),
    reference=True,
    hyperparameters=("logprob_granularity", "loss_agg", "clip_ratio", "clip_ratio_high", "dual_clip", "entropy_coef",
                     "kl_coef", "kl_estimator"),
)
"""What `actor_loss` reads."""

POLICY_LOSSES.register("grpo")(PolicyLoss(fn=actor_loss, inputs=ACTOR_INPUTS))
POLICY_LOSSES.register("rloo")(PolicyLoss(fn=actor_loss, inputs=ACTOR_INPUTS))
