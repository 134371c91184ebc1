"""The `algorithm` section of a config: the RL algorithm and every option of it.

Each field maps to an argument of a function in `vla_rl.algorithms` (docs/algorithms.md has the
table). Defaults are the PPO recipe of the field (clip 0.2, dual clip 3.0, value clip 0.2, GAE
0.99/0.95, lr 1e-4 with a 3e-3 value head); a GRPO recipe sets name/advantage to "grpo" and the
group options. An option that cannot act under the other settings (a value clip without a critic,
gamma with group advantages) must stay at its default: setting it is an error, never a no-op.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, Optional

from vla_rl.config.core import check

# Mirrors of `vla_rl.algorithms` registries (config imports nothing of the project);
# tests/algorithms/test_alg_config.py keeps them equal to POLICY_LOSSES / ADVANTAGE_ESTIMATORS.
NAME_USES_CRITIC = {"ppo": True, "grpo": False, "rloo": False}
"""Whether the loss registered under each algorithm name trains a critic."""
ESTIMATOR_NEEDS_CRITIC = {"gae": True, "grpo": False, "rloo": False}
"""Whether each advantage estimator reads value estimates."""


@dataclass
class AlgorithmConfig:
    """PPO / GRPO / RLOO: advantage estimator, clipped loss, coefficients and optimiser settings."""

    # --- which algorithm ----------------------------------------------------------------------
    name: Literal["ppo", "grpo", "rloo"] = "ppo"
    """Loss in POLICY_LOSSES: "ppo" (clipped objective + critic) or "grpo"/"rloo" (clipped, no critic)."""
    advantage: Literal["gae", "grpo", "rloo"] = "gae"
    """Estimator in ADVANTAGE_ESTIMATORS: "gae" (needs a critic) or the group estimators "grpo"/"rloo"."""

    # --- advantages ---------------------------------------------------------------------------
    gamma: float = 0.99
    """Discount per chunk-step (reward_granularity=chunk) or per primitive step (action); GAE only."""
    gae_lambda: float = 0.95
    """GAE lambda, applied per chunk-step; GAE only."""
    reward_granularity: Literal["chunk", "action"] = "chunk"
    """Rewards inside a chunk: "chunk" sums them (one time step), "action" discounts each step; GAE only."""
    normalize_advantages: bool = True
    """Normalise advantages to zero mean, unit std over the valid entries of the whole rollout batch."""
    group_size: int = 8
    """Environments reset from the same reset id (one group); group estimators only."""
    grpo_std_normalize: bool = True
    """Divide group advantages by the group's return std (+adv_eps); False: Dr. GRPO / plain RLOO."""
    filter_equal_groups: bool = True
    """Drop groups whose returns are all equal (all success / all failure) from the loss."""
    adv_eps: float = 1e-6
    """Added to a std before dividing by it (advantage and group normalisation)."""

    # --- policy loss --------------------------------------------------------------------------
    logprob_granularity: Literal["token", "action", "chunk"] = "token"
    """Unit of the PPO ratio: per token, per action (sum of its tokens) or per chunk (sum of all)."""
    loss_agg: Literal["token_mean", "seq_mean", "traj_equal"] = "token_mean"
    """Averaging of per-element losses: over all elements, per sample then samples, or per trajectory."""
    clip_ratio: float = 0.2
    """Lower clip range: the ratio is clipped at 1 - clip_ratio (and at 1 + clip_ratio unless clip_ratio_high)."""
    clip_ratio_high: Optional[float] = None
    """Upper clip range 1 + clip_ratio_high ("clip-higher", 0.28 in OFT/GRPO recipes); None: clip_ratio."""
    dual_clip: Optional[float] = 3.0
    """Dual-clip constant c > 1 capping the loss of negative advantages at -c*A; None: off."""
    entropy_coef: float = 0.0
    """Weight of the per-token entropy bonus (the field's VLA recipes use 0)."""
    kl_coef: float = 0.0
    """Weight of the per-token KL penalty to the frozen initial policy; 0: off (no reference pass)."""
    kl_estimator: Literal["k1", "k2", "k3"] = "k3"
    """KL estimator in KL_ESTIMATORS (k3: unbiased, non-negative, low variance); used when kl_coef > 0."""

    # --- critic -------------------------------------------------------------------------------
    vf_coef: float = 0.5
    """Weight of the value loss (which is 0.5 * squared error); critic only."""
    value_clip: Optional[float] = 0.2
    """Keep new values within this distance of the rollout's values (PPO value clipping); None: off."""
    huber_delta: Optional[float] = None
    """Huber loss with this delta for the value error; None: squared error."""

    # --- optimisation -------------------------------------------------------------------------
    update_epochs: int = 1
    """Passes over the rollout batch per iteration."""
    num_minibatches: int = 4
    """Minibatches per epoch (one optimiser step each)."""
    lr: float = 1e-4
    """Learning rate of the policy parameters."""
    value_lr: float = 3e-3
    """Learning rate of the value head (the field trains it ~30x faster than the backbone); critic only."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: Optional[float] = 1.0
    """Clip the global gradient norm to this value before each step; None: no clipping."""
    target_kl: Optional[float] = None
    """Stop the iteration's remaining minibatches once approx_kl exceeds this; None: never."""

    @property
    def uses_critic(self) -> bool:
        """The policy needs a value head and the loss trains it (name "ppo")."""
        return NAME_USES_CRITIC[self.name]

    @property
    def uses_groups(self) -> bool:
        """Advantages are group-relative: rollouts reset `group_size` environments per reset id."""
        return not ESTIMATOR_NEEDS_CRITIC[self.advantage]

    def __post_init__(self) -> None:
        critic, needs = NAME_USES_CRITIC[self.name], ESTIMATOR_NEEDS_CRITIC[self.advantage]
        check(critic or not needs, f"advantage={self.advantage!r} needs a critic but name={self.name!r} has none; "
              "set algorithm.advantage to 'grpo' or 'rloo' (or algorithm.name='ppo')")
        check(needs or not critic, f"name={self.name!r} trains a critic that advantage={self.advantage!r} never "
              "reads; set algorithm.advantage='gae', or algorithm.name='grpo' for critic-free training")
        check(0 < self.gamma <= 1, f"gamma={self.gamma} must be in (0, 1]")
        check(0 <= self.gae_lambda <= 1, f"gae_lambda={self.gae_lambda} must be in [0, 1]")
        check(not self.uses_groups or self.group_size >= 2,
              f"group_size={self.group_size}: group advantages need >= 2 environments per reset id")
        check(self.adv_eps > 0, f"adv_eps={self.adv_eps} must be > 0")
        check(0 < self.clip_ratio < 1, f"clip_ratio={self.clip_ratio} must be in (0, 1) (the ratio is clipped at 1 - clip_ratio)")
        check(self.clip_ratio_high is None or self.clip_ratio_high > 0,
              f"clip_ratio_high={self.clip_ratio_high} must be > 0 (or null to reuse clip_ratio)")
        check(self.dual_clip is None or self.dual_clip > 1, f"dual_clip={self.dual_clip} must be > 1 (or null: off)")
        check(self.value_clip is None or self.value_clip > 0, f"value_clip={self.value_clip} must be > 0 (or null: off)")
        check(self.huber_delta is None or self.huber_delta > 0, f"huber_delta={self.huber_delta} must be > 0 (or null: MSE)")
        for coef in ("vf_coef", "entropy_coef", "kl_coef", "weight_decay"):
            check(getattr(self, coef) >= 0, f"{coef}={getattr(self, coef)} must be >= 0")
        check(self.update_epochs >= 1 and self.num_minibatches >= 1, "update_epochs and num_minibatches must be >= 1")
        check(self.lr > 0 and self.value_lr > 0, "lr and value_lr must be > 0")
        check(self.max_grad_norm is None or self.max_grad_norm > 0, f"max_grad_norm={self.max_grad_norm} must be > 0 (or null: off)")
        check(self.target_kl is None or self.target_kl > 0, f"target_kl={self.target_kl} must be > 0 (or null: off)")
        self._refuse_inert_options()

    def _refuse_inert_options(self) -> None:
        """An option that cannot act under the other settings must keep its default."""
        uses_eps = self.normalize_advantages or (self.uses_groups and self.grpo_std_normalize)
        rules = [
            (not self.uses_critic, ("vf_coef", "value_clip", "huber_delta", "value_lr"), f"name={self.name!r} trains no critic"),
            (self.uses_groups, ("gamma", "gae_lambda", "reward_granularity"),
             f"advantage={self.advantage!r} uses undiscounted trajectory returns"),
            (not self.uses_groups, ("group_size", "grpo_std_normalize", "filter_equal_groups"),
             f"advantage={self.advantage!r} forms no groups"),
            (self.kl_coef == 0, ("kl_estimator",), "kl_coef is 0 (no KL penalty)"),
            (not uses_eps, ("adv_eps",), "no advantage normalisation divides by a std"),
        ]
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for inert, names, why in rules:
            for name in names:
                value = getattr(self, name)
                check(not inert or value == defaults[name],
                      f"{name}={value!r} has no effect because {why}; remove it (default {defaults[name]!r})")
