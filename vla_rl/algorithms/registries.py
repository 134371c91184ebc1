"""The registries of the algorithm layer and the small records they hold.

Each family of interchangeable pieces (advantage estimators, policy losses, KL estimators, loss
aggregation modes, log-prob and reward granularities) is a `Registry` keyed by the name a config
uses. The modules that define the pieces register them; `vla_rl.algorithms` imports those modules,
so importing the package fills every registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping

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
class LossInputs:
    """What a loss, or one term of it, reads: every name is the keyword argument it is passed as.

    The learner (`runner/update.py`) feeds a loss exactly these, so a loss declares its inputs once,
    here, and no caller maps buffer keys or config fields onto arguments by hand.
    """

    reads: Mapping[str, str] = field(default_factory=dict)
    """Argument -> rollout buffer key, one row per sample of the minibatch. The names agree except for
    old_values: the rollout's value estimates, which the buffer stores (and GAE reads) as "values"."""
    evaluates: tuple[str, ...] = ()
    """Fields of `policy.evaluate`'s output (logprobs, entropy, values), passed under their names."""
    reference: bool = False
    """Takes ref_logprobs: the frozen reference policy's log-probs when kl_coef > 0, else None."""
    hyperparameters: tuple[str, ...] = ()
    """`AlgorithmConfig` fields, passed under their names."""

    def __or__(self, other: LossInputs) -> LossInputs:
        """The inputs of a loss made of both terms."""
        return LossInputs({**self.reads, **other.reads}, _union(self.evaluates, other.evaluates),
                          self.reference or other.reference, _union(self.hyperparameters, other.hyperparameters))

    @property
    def arguments(self) -> frozenset[str]:
        """Every keyword argument the loss takes."""
        return frozenset([*self.reads, *self.evaluates, *self.hyperparameters, *(["ref_logprobs"] * self.reference)])


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return first + tuple(name for name in second if name not in first)


@dataclass(frozen=True)
class PolicyLoss:
    """A registered loss and the inputs it declares."""

    fn: Callable
    """The pure function returning a `LossOutput`; takes exactly `inputs.arguments`, by keyword."""
    inputs: LossInputs
    """What `fn` reads from the buffer, the policy's evaluation, the reference and the config."""

    @property
    def needs_critic(self) -> bool:
        """True when the loss also trains the value head (it reads evaluated values)."""
        return "values" in self.inputs.evaluates

    def bind(self, algo) -> dict[str, Any]:
        """The declared hyperparameters, read from an `AlgorithmConfig` (or anything with those fields)."""
        return {name: getattr(algo, name) for name in self.inputs.hyperparameters}


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
