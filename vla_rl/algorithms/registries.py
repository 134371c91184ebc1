"""The registries of the algorithm layer and the small records they hold.

Each family of interchangeable pieces (advantage estimators, policy losses, KL estimators, loss
aggregation modes, log-prob and reward granularities) is a `Registry` keyed by the name a config
uses. The modules that define the pieces register them; `vla_rl.algorithms` imports those modules,
so importing the package fills every registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from vla_rl.registry import Registry


@dataclass(frozen=True)
class AdvantageEstimator:
    """A registered advantage estimator and what it needs from the rollout."""

    fn: Callable
    """The pure function computing the advantages."""
    needs_critic: bool
    """True when the estimator reads value estimates (so the policy must have a value head)."""
    inputs: Literal["window", "group"]
    """"window": (T, N) tensors of a rollout window (rewards, values, dones), see `gae`.
    "group": per-trajectory returns (B,) and group ids (B,), see `grpo_advantages`."""


@dataclass(frozen=True)
class PolicyLoss:
    """A registered loss and whether it trains a critic."""

    fn: Callable
    """The pure function returning a `LossOutput`."""
    needs_critic: bool
    """True when the loss also takes values/returns and returns a value_loss term."""


@dataclass(frozen=True)
class Granularity:
    """A log-prob granularity: how many trailing dims of a (N, K, A) token tensor are summed."""

    summed_dims: int
    """0 = token (N, K, A), 1 = action (N, K), 2 = chunk (N,)."""


ADVANTAGE_ESTIMATORS: Registry[AdvantageEstimator] = Registry("advantage estimator")
POLICY_LOSSES: Registry[PolicyLoss] = Registry("policy loss")
KL_ESTIMATORS: Registry[Callable] = Registry("KL estimator")
LOSS_AGGREGATIONS: Registry[Callable] = Registry("loss aggregation")
LOGPROB_GRANULARITIES: Registry[Granularity] = Registry("log-prob granularity")
REWARD_GRANULARITIES: Registry[Callable] = Registry("reward granularity")
