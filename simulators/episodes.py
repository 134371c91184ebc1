"""Per-environment episode bookkeeping of a vectorised env: ids, lengths, returns, success, done flags.

Plain numpy, no processes: `SubprocVectorEnv` feeds it what each env executed in a chunk and reads
back the (N, K) reward/flag arrays and the episode statistics the contract puts into `info`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


class EpisodeBook:
    """Running statistics of the current episode of each of N environments."""

    def __init__(self, num_envs: int) -> None:
        n = num_envs
        self.num_envs = n
        self.reset_id = np.zeros(n, dtype=np.int64)
        self.length = np.zeros(n, dtype=np.int64)
        self.ret = np.zeros(n, dtype=np.float64)
        self.success_once = np.zeros(n, dtype=bool)
        self.max_steps = np.ones(n, dtype=np.int64)
        self.done = np.zeros(n, dtype=bool)
        """Fixed-length mode: the episode ended and the env waits for an explicit reset."""
        self.terminated = np.zeros(n, dtype=bool)
        self.truncated = np.zeros(n, dtype=bool)

    def start(self, env_ids: Sequence[int], reset_ids: Sequence[int], max_steps: Sequence[int]) -> None:
        """A new episode began in each of `env_ids`."""
        idx = np.asarray(env_ids, dtype=np.int64)
        self.reset_id[idx] = np.asarray(reset_ids, dtype=np.int64)
        self.max_steps[idx] = np.asarray(max_steps, dtype=np.int64)
        self.length[idx] = 0
        self.ret[idx] = 0.0
        self.success_once[idx] = False
        self.done[idx] = False
        self.terminated[idx] = False
        self.truncated[idx] = False

    def steps_left(self) -> np.ndarray:
        return np.maximum(self.max_steps - self.length, 0)

    def get(self, env_id: int) -> dict[str, Any]:
        """The bookkeeping of one env (part of a state snapshot)."""
        keys = ("reset_id", "length", "ret", "success_once", "max_steps", "done", "terminated", "truncated")
        return {k: getattr(self, k)[env_id].item() for k in keys}

    def put(self, env_id: int, values: dict[str, Any]) -> None:
        for k, v in values.items():
            getattr(self, k)[env_id] = v


class ChunkRecord:
    """Collects one chunk's per-step results for N envs, then closes the episodes that ended."""

    def __init__(self, book: EpisodeBook, chunk_len: int) -> None:
        n, k = book.num_envs, chunk_len
        self.book = book
        self.reward = np.zeros((n, k), dtype=np.float32)
        self.terminated = np.zeros((n, k), dtype=bool)
        self.truncated = np.zeros((n, k), dtype=bool)
        self.executed = np.zeros((n, k), dtype=bool)
        self.success = np.zeros(n, dtype=bool)
        self.success_at_end = np.zeros(n, dtype=bool)
        self.ended = np.zeros(n, dtype=bool)
        self.failed = np.zeros(n, dtype=bool)
        # Envs already finished (fixed-length mode) keep their flags for the whole chunk.
        self.terminated[book.done] = book.terminated[book.done, None]
        self.truncated[book.done] = book.truncated[book.done, None]

    def add(self, env_id: int, rewards: Sequence[float], successes: Sequence[bool], terminated: bool) -> None:
        """Env `env_id` executed len(rewards) steps of the chunk."""
        b, n_exec = self.book, len(rewards)
        if n_exec == 0:
            return
        self.reward[env_id, :n_exec] = rewards
        self.executed[env_id, :n_exec] = True
        b.length[env_id] += n_exec
        b.ret[env_id] += float(np.sum(rewards, dtype=np.float64))
        b.success_once[env_id] |= bool(np.any(successes))
        self.success[env_id] = bool(successes[-1])
        if terminated:
            self.terminated[env_id, n_exec - 1 :] = True
            self._end(env_id)
        elif b.length[env_id] >= b.max_steps[env_id]:
            self.truncated[env_id, n_exec - 1 :] = True
            self._end(env_id)

    def fail(self, env_id: int) -> None:
        """The env's worker died or hung: its episode ends here, truncated, with what was recorded."""
        self.truncated[env_id, :] = True
        self.failed[env_id] = True
        self._end(env_id)

    def _end(self, env_id: int) -> None:
        self.ended[env_id] = True
        self.success_at_end[env_id] = self.success[env_id]
        b = self.book
        b.terminated[env_id] = self.terminated[env_id, -1]
        b.truncated[env_id] = self.truncated[env_id, -1]

    def info(self) -> dict[str, Any]:
        """The contract's info keys; episode stats are valid where "episode_done" (0 elsewhere)."""
        b, e = self.book, self.ended
        return {
            "success": self.success.copy(),
            "executed": self.executed,
            "episode_done": e.copy(),
            "episode_return": np.where(e, b.ret, 0.0).astype(np.float32),
            "episode_length": np.where(e, b.length, 0).astype(np.int64),
            "success_once": e & b.success_once,
            "success_at_end": e & self.success_at_end,
            "worker_failed": self.failed.copy(),
        }
