"""The one statistics type of finished episodes, for training rollouts and evaluations alike.

A rollout adds the episodes that ended in a chunk (`add_finished`, from the env's info); an evaluation
also knows each episode's reset id, its env steps and policy calls, and how long it took. Data-parallel
ranks merge their parts (`merge`) in rank order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np


@dataclass
class EpisodeStats:
    reset_ids: list[int] = field(default_factory=list)
    """The reset id of each episode, where the collection knows it (evaluations; empty for training rollouts)."""
    successes: list[bool] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    env_steps: int = 0
    policy_calls: int = 0
    seconds: float = 0.0

    @property
    def success_rate(self) -> float:
        return float(np.mean(self.successes)) if self.successes else 0.0

    @classmethod
    def merge(cls, parts: Sequence["EpisodeStats"]) -> "EpisodeStats":
        """One set of statistics from those of disjoint sets of episodes (in order; the slowest part's seconds)."""
        merged = cls(seconds=max((p.seconds for p in parts), default=0.0))
        for part in parts:
            merged.reset_ids += part.reset_ids
            merged.successes += part.successes
            merged.returns += part.returns
            merged.lengths += part.lengths
            merged.env_steps += part.env_steps
            merged.policy_calls += part.policy_calls
        return merged

    def add_finished(self, info: dict[str, Any]) -> None:
        """The episodes that an env chunk's `info` marks done (`episode_done`), with their outcome."""
        done = np.asarray(info.get("episode_done", []), dtype=bool)
        for i in np.flatnonzero(done):
            self.add(bool(info["success_once"][i]), float(info["episode_return"][i]), int(info["episode_length"][i]))

    def add(self, success: bool, episode_return: float, length: int, reset_id: int | None = None) -> None:
        self.successes.append(success)
        self.returns.append(episode_return)
        self.lengths.append(length)
        if reset_id is not None:
            self.reset_ids.append(reset_id)

    def metrics(self, prefix: str) -> dict[str, float]:
        """`{prefix}/episodes` and, where any episode finished, its success rate, mean return and length."""
        if not self.successes:
            return {f"{prefix}/episodes": 0.0}
        return {
            f"{prefix}/episodes": float(len(self.successes)),
            f"{prefix}/success_rate": self.success_rate,
            f"{prefix}/episode_return": float(np.mean(self.returns)),
            f"{prefix}/episode_length": float(np.mean(self.lengths)),
        }
