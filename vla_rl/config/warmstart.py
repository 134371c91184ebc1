"""The `warmstart` section of a config: demonstrations and supervised fine-tuning (SFT) before RL.

With `warmstart.enabled`, `vla-rl train` first generates `demos` scripted demonstrations in the
run's environment (or reads `demos_dir`), trains the policy on them by cross-entropy over its action
tokens for `sft_steps`, evaluates that SFT policy on the run's evaluation seeds, and then fine-tunes
it with RL. `vla-rl demos` and `vla-rl sft` run the first two steps alone with the same fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from vla_rl.config.core import check

DEMO_GENERATION_KEYS = ("demos", "demo_seed", "demo_noise", "demo_envs")
"""Keys that only generating demonstrations reads (inert when `demos_dir` supplies them)."""


@dataclass
class WarmstartConfig:
    """Demonstrations -> SFT -> (RL by the runner)."""

    enabled: bool = False
    """Run demos and SFT before RL in `vla-rl train` (the RL phase starts from the SFT policy)."""

    # --- demonstrations -------------------------------------------------------------------------
    demos: int = 32
    """Successful scripted demonstrations to generate."""
    demo_seed: int = 500_000
    """First reset id of the demonstrations (apart from training ids, which start at env.seed, and
    evaluation ids, which start at runner.eval_seed)."""
    demo_noise: float = 0.0
    """Std of Gaussian noise on the demonstrator's executed xyz action (its clean action is recorded), so
    the demos show recoveries from states off the ideal path (DART); 0: no noise."""
    demo_envs: Optional[int] = 8
    """Envs that generate the demos at once (at most `demos`); the demo set depends on it (which reset ids
    end up kept, and in what order), so a fixed value gives every recipe with the same env the same demos
    and the same SFT policy whatever its `env.num_envs`. None: the run's `env.num_envs`."""
    demos_dir: Optional[str] = None
    """An existing demo folder (`vla-rl demos` output) to train on instead of generating new demos."""

    # --- supervised fine-tuning -----------------------------------------------------------------
    sft_steps: int = 300
    """Optimiser steps of SFT (one minibatch each)."""
    batch_size: int = 32
    """Demonstration steps per SFT minibatch."""
    lr: float = 1e-3
    """SFT learning rate (AdamW; tiny models from random weights take 1e-3, pretrained ones ~1e-4)."""
    weight_decay: float = 0.0
    """AdamW weight decay during SFT."""
    max_grad_norm: Optional[float] = 1.0
    """Clip the global gradient norm during SFT; None: no clipping."""
    holdout_fraction: float = 0.125
    """Fraction of demo episodes held out (whole episodes) to measure the SFT validation loss."""
    eval_loss_every: int = 50
    """Measure the held-out loss every this many SFT steps (and after the last)."""
    value_coef: float = 0.0
    """Also regress the value head on the demos' discounted returns with this weight (0: leave it)."""
    value_gamma: float = 0.99
    """Discount of the returns the value head is regressed on (when value_coef > 0)."""

    def __post_init__(self) -> None:
        check(self.demos >= 1, f"warmstart.demos={self.demos} must be >= 1")
        check(self.demo_seed >= 0, f"warmstart.demo_seed={self.demo_seed} must be >= 0 (it is a reset id)")
        check(self.demo_envs is None or self.demo_envs >= 1,
              f"warmstart.demo_envs={self.demo_envs} must be >= 1 (or null: env.num_envs)")
        check(self.demo_noise >= 0, f"warmstart.demo_noise={self.demo_noise} must be >= 0")
        check(self.sft_steps >= 0, f"warmstart.sft_steps={self.sft_steps} must be >= 0")
        check(self.batch_size >= 1, f"warmstart.batch_size={self.batch_size} must be >= 1")
        check(self.lr > 0, f"warmstart.lr={self.lr} must be > 0")
        check(self.weight_decay >= 0, f"warmstart.weight_decay={self.weight_decay} must be >= 0")
        check(self.max_grad_norm is None or self.max_grad_norm > 0,
              f"warmstart.max_grad_norm={self.max_grad_norm} must be > 0 (or null: off)")
        check(0.0 <= self.holdout_fraction < 1.0, f"warmstart.holdout_fraction={self.holdout_fraction} must be in [0, 1)")
        check(self.eval_loss_every >= 1, f"warmstart.eval_loss_every={self.eval_loss_every} must be >= 1")
        check(self.value_coef >= 0, f"warmstart.value_coef={self.value_coef} must be >= 0")
        check(0 < self.value_gamma <= 1, f"warmstart.value_gamma={self.value_gamma} must be in (0, 1]")
        if self.demos_dir is not None:
            defaults = {f.name: f.default for f in dataclasses.fields(self)}
            for key in DEMO_GENERATION_KEYS:
                value = getattr(self, key)
                check(value == defaults[key],
                      f"warmstart.{key}={value!r} has no effect because warmstart.demos_dir is set (its demos are read, "
                      f"none are generated); remove it, set it back to {defaults[key]!r} if a recipe you extend sets it, "
                      "or unset warmstart.demos_dir to generate demos")

    def reading(self, demos_dir: str) -> "WarmstartConfig":
        """This section with its demos read from `demos_dir` (the generation keys back at their defaults)."""
        defaults = {f.name: f.default for f in dataclasses.fields(self) if f.name in DEMO_GENERATION_KEYS}
        return dataclasses.replace(self, demos_dir=demos_dir, **defaults)


__all__ = ["DEMO_GENERATION_KEYS", "WarmstartConfig"]
