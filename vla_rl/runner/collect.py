"""Rollout collection: the policy acts, the environments step, the buffer records.

`collect_window` fills a (T, N) window from continuing environments (auto-reset, PPO style): a
truncated episode is bootstrapped from the value of its final observation, a terminated one is not.
`collect_episodes` runs fixed-length episodes from explicit reset ids (GRPO style), recording every
step until the longest episode of the batch has ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from tqdm import tqdm

from vla_rl.runner.buffer import RolloutBuffer


def select_obs(obs: dict[str, Any], index: np.ndarray) -> dict[str, Any]:
    """The observation of a subset of environments."""
    return {
        "images": {cam: img[index] for cam, img in obs["images"].items()},
        "proprio": obs["proprio"][index],
        "instruction": [obs["instruction"][i] for i in index],
    }


@dataclass
class EpisodeStats:
    """Finished-episode statistics gathered during one collection."""

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)

    def add(self, info: dict[str, Any]) -> None:
        done = np.asarray(info.get("episode_done", []), dtype=bool)
        for i in np.flatnonzero(done):
            self.returns.append(float(info["episode_return"][i]))
            self.lengths.append(int(info["episode_length"][i]))
            self.successes.append(bool(info["success_once"][i]))

    def metrics(self, prefix: str) -> dict[str, float]:
        if not self.returns:
            return {f"{prefix}/episodes": 0.0}
        return {
            f"{prefix}/episodes": float(len(self.returns)),
            f"{prefix}/success_rate": float(np.mean(self.successes)),
            f"{prefix}/episode_return": float(np.mean(self.returns)),
            f"{prefix}/episode_length": float(np.mean(self.lengths)),
        }


def _values_or_zeros(values: torch.Tensor | None, n: int) -> torch.Tensor:
    return values.float().cpu() if values is not None else torch.zeros(n)


def _step_fields(out, result, n: int) -> dict[str, torch.Tensor]:
    """What the learner needs of one policy call and the chunk it executed: per-step (N, K) rewards
    and done flags (the algorithm layer reduces them to the configured reward granularity)."""
    return {
        "old_logprobs": out.logprobs.float(),
        "values": _values_or_zeros(out.values, n),
        "step_rewards": torch.as_tensor(result.reward, dtype=torch.float32),
        "step_terminated": torch.as_tensor(result.terminated, dtype=torch.bool),
        "step_truncated": torch.as_tensor(result.truncated, dtype=torch.bool),
    }


@torch.no_grad()
def collect_window(env, policy, buffer: RolloutBuffer, obs: dict[str, Any], temperature: float,
                   progress: bool = True) -> tuple[dict[str, Any], EpisodeStats, torch.Tensor]:
    """Fill `buffer` with T steps from continuing environments starting at `obs`.

    Returns the observation after the window, the finished episodes' stats, and the value of that
    observation (N,) for bootstrapping the window's tail.
    """
    buffer.reset()
    stats = EpisodeStats()
    n = env.num_envs
    for _ in tqdm(range(buffer.steps), desc="rollout", leave=False, disable=not progress):
        out = policy.act(obs, mode="sample", temperature=temperature)
        result = env.chunk_step(out.actions)
        terminated = torch.as_tensor(result.terminated).any(dim=1)
        truncated = torch.as_tensor(result.truncated).any(dim=1) & ~terminated
        bootstrap = torch.zeros(n)
        if truncated.any() and out.values is not None:
            index = np.flatnonzero(truncated.numpy())
            final = select_obs(result.info["final_obs"], index)
            bootstrap[index] = _values_or_zeros(policy.act(final, mode="greedy").values, len(index))
        buffer.add(out.forward_inputs, bootstrap_values=bootstrap, **_step_fields(out, result, n))
        stats.add(result.info)
        obs = result.obs
    last_values = _values_or_zeros(policy.act(obs, mode="greedy").values, n)
    return obs, stats, last_values


@torch.no_grad()
def collect_episodes(env, policy, buffer: RolloutBuffer, reset_ids: Sequence[int], temperature: float,
                     progress: bool = True) -> EpisodeStats:
    """Run one fixed-length episode per environment from `reset_ids`, recording T steps.

    The environment must have auto-reset off: after an episode ends its environment ignores actions
    and reports zero reward; `done` marks each step at or after the episode's end.
    """
    buffer.reset()
    stats = EpisodeStats()
    n = env.num_envs
    obs = env.reset(reset_ids=list(reset_ids))
    ended = torch.zeros(n, dtype=torch.bool)
    for _ in tqdm(range(buffer.steps), desc="rollout", leave=False, disable=not progress):
        out = policy.act(obs, mode="sample", temperature=temperature)
        result = env.chunk_step(out.actions)
        done_now = torch.as_tensor(result.terminated).any(dim=1) | torch.as_tensor(result.truncated).any(dim=1)
        buffer.add(out.forward_inputs, **_step_fields(out, result, n))
        stats.add(result.info)
        ended |= done_now
        obs = result.obs
        if bool(ended.all()):  # every episode is over: the remaining steps would all be masked
            break
    return stats
