"""Demonstrations -> supervised samples -> the policy's own forward inputs with demo action tokens.

A sample is one demo step: the observation before the action and the chunk of K actions that
followed it (K = the policy's `action_chunk`; past the episode's end the chunk is padded with the
last action and masked out of the loss). The model inputs come from the policy's own input
preparation (`policy.prepare(obs)`, the function `act` uses), and the targets are what the policy's
`demo_targets` makes of the demo actions (token families: the codec's tokens), so SFT trains exactly
the distribution RL later samples from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from simulators.base import select_obs
from vla_rl.demos.format import Episode


@dataclass
class SFTSamples:
    """N supervised samples (flattened demo steps)."""

    obs: dict[str, Any]
    """The batched observation: "images" {camera: uint8 (N, H, W, 3)}, "proprio" (N, P), "instruction"."""
    actions: np.ndarray
    """float32 (N, K, A): the action chunk that followed each observation."""
    mask: np.ndarray
    """bool (N, K): chunk entries inside the episode (False where padded past its end)."""
    returns: np.ndarray
    """float32 (N,): discounted return-to-go of the demo from each step (value targets)."""
    episode: np.ndarray
    """int64 (N,): index of the episode each sample comes from."""

    def __len__(self) -> int:
        return len(self.actions)


def chunk_actions(actions: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, A) -> chunks (T, K, A) of the next K actions, padded with the last action, and the mask (T, K)."""
    t = len(actions)
    index = np.arange(t)[:, None] + np.arange(k)[None, :]
    mask = index < t
    return actions[np.minimum(index, t - 1)], mask


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """Return-to-go G_t = r_t + gamma G_{t+1} of one episode (the last step ends it)."""
    out = np.zeros(len(rewards), dtype=np.float64)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = float(rewards[t]) + gamma * running
        out[t] = running
    return out.astype(np.float32)


def episode_samples(episodes: Sequence[Episode], chunk: int, gamma: float = 0.99) -> SFTSamples:
    """All steps of `episodes` as samples with K = `chunk` action chunks."""
    if not episodes:
        raise ValueError("no demo episodes to build SFT samples from")
    cameras = sorted(episodes[0].images)
    chunks, masks = zip(*(chunk_actions(e.actions, chunk) for e in episodes))
    return SFTSamples(
        obs={
            "images": {c: np.concatenate([e.images[c] for e in episodes]) for c in cameras},
            "proprio": np.concatenate([e.proprio for e in episodes]).astype(np.float32),
            "instruction": [e.instruction for e in episodes for _ in range(len(e))],
        },
        actions=np.concatenate(chunks).astype(np.float32),
        mask=np.concatenate(masks),
        returns=np.concatenate([discounted_returns(e.rewards, gamma) for e in episodes]),
        episode=np.concatenate([np.full(len(e), i, dtype=np.int64) for i, e in enumerate(episodes)]),
    )


def split_episodes(num_episodes: int, holdout_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, held-out) episode indices: a seeded shuffle, round(fraction * n) held out (at least one
    when the fraction is positive and there are two or more episodes; never all of them)."""
    if num_episodes < 1:
        raise ValueError("need at least one demo episode")
    n_hold = 0
    if holdout_fraction > 0 and num_episodes >= 2:
        n_hold = min(num_episodes - 1, max(1, round(num_episodes * holdout_fraction)))
    order = np.random.default_rng(seed).permutation(num_episodes).tolist()
    return sorted(order[n_hold:]), sorted(order[:n_hold])


@torch.no_grad()
def model_inputs(policy: Any, obs: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The policy's model inputs for `obs` (its `prepare`, or `act`'s forward inputs without what it sampled)."""
    if hasattr(policy, "prepare"):
        return policy.prepare(obs)
    inputs = dict(policy.act(obs, mode="greedy").forward_inputs)
    inputs.pop(policy.action_key)
    return inputs


def forward_inputs(policy: Any, samples: SFTSamples, batch: int = 256) -> dict[str, torch.Tensor]:
    """`policy.supervised_loss`-ready inputs of every sample: its model inputs plus `policy.demo_targets` of the
    demo action chunks (by default the actions under `policy.action_key`, (N, K, A), which `evaluate` scores)."""
    k, a = policy.action_chunk, policy.action_dim
    if samples.actions.shape[1:] != (k, a):
        raise ValueError(f"samples hold action chunks {samples.actions.shape[1:]} but the policy predicts ({k}, {a}); "
                         "build them with episode_samples(episodes, chunk=policy.action_chunk)")
    parts: list[dict[str, torch.Tensor]] = []
    for first in range(0, len(samples), batch):
        index = np.arange(first, min(first + batch, len(samples)))
        inputs = {key: value.cpu() for key, value in model_inputs(policy, select_obs(samples.obs, index)).items()}
        inputs.update(policy.demo_targets(samples.actions[index]))
        parts.append(inputs)
    return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}


__all__ = ["SFTSamples", "chunk_actions", "discounted_returns", "episode_samples", "forward_inputs", "model_inputs",
           "split_episodes"]
