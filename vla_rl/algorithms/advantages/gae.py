"""Generalized advantage estimation over a rollout window with partial resets.

The window holds T chunk-steps of N environments. An environment may finish an episode anywhere in
the window and continue with a new one (auto-reset), so the recursion is cut at every done. The two
kinds of end are treated differently:

- terminated (the task ended: success or failure): nothing follows, the next value is 0;
- truncated (time limit, the task would have gone on): the next value is the value of the final
  observation, `bootstrap_values[t]`, since the observation after the step belongs to a new episode.

A step both terminated and truncated counts as terminated. `gamma` may be a (T, N) tensor of
per-step discounts (see `chunk_rewards.reduce_chunk_rewards` for action-level rewards in chunks).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from vla_rl.algorithms.checks import require_bool, require_detached, require_shape
from vla_rl.algorithms.registries import ADVANTAGE_ESTIMATORS, AdvantageEstimator


class AdvantageOutput(NamedTuple):
    advantages: torch.Tensor
    """(T, N) advantage of each chunk-step."""
    returns: torch.Tensor
    """(T, N) value targets: advantages + values."""


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    bootstrap_values: torch.Tensor,
    last_values: torch.Tensor,
    gamma: float | torch.Tensor,
    lam: float,
) -> AdvantageOutput:
    """GAE(gamma, lambda) over (T, N) tensors; see the module docstring for the done handling.

    rewards, values: float (T, N); terminated, truncated: bool (T, N); bootstrap_values: (T, N),
    read only where truncated (other entries may hold anything, NaN included); last_values: (N,),
    the value of the observation after the window.
    """
    T, N = rewards.shape
    layout = "one entry per chunk-step (T) and environment (N)"
    for name, x in (("values", values), ("terminated", terminated), ("truncated", truncated),
                    ("bootstrap_values", bootstrap_values)):
        require_shape(name, x, (T, N), layout)
    require_shape("last_values", last_values, (N,), "value of the observation after the window")
    require_bool("terminated", terminated)
    require_bool("truncated", truncated)
    for name, x in (("rewards", rewards), ("values", values), ("bootstrap_values", bootstrap_values),
                    ("last_values", last_values)):
        require_detached(name, x)
    discount = torch.as_tensor(gamma, dtype=rewards.dtype, device=rewards.device).expand(T, N)

    next_values = torch.cat([values[1:], last_values[None]], dim=0)
    next_values = torch.where(truncated, bootstrap_values, next_values)
    next_values = torch.where(terminated, torch.zeros_like(next_values), next_values)
    deltas = rewards + discount * next_values - values
    carry = discount * lam * (~(terminated | truncated)).to(rewards.dtype)

    advantages = torch.empty_like(rewards)
    running = torch.zeros_like(last_values)
    for t in range(T - 1, -1, -1):
        running = deltas[t] + carry[t] * running
        advantages[t] = running
    return AdvantageOutput(advantages, advantages + values)


ADVANTAGE_ESTIMATORS.register("gae")(AdvantageEstimator(fn=gae, needs_critic=True, inputs="window"))
