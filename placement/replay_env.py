"""Exact env state for checkpoints: record each episode's actions, restore by reset + replay.

Restoring a simulator snapshot (`SubprocVectorEnv.set_state`) is close but not bit-exact in SAPIEN
(link poses are recomputed; ~1e-7 drifts, a few pixels differ), and a resumed PPO run would drift
from the uninterrupted one. Simulation from a reset id is deterministic, so `ReplayEnv` keeps, per
env, the reset id of its episode in flight and the actions it has executed since; `get_state()`
returns that log and `set_state(log)` resets each env to its id and replays its actions, which
rebuilds the scene, the observation and the episode bookkeeping exactly.

These two are the checkpoint form of the env's state, in place of the `VectorEnv` simulator snapshots
of the same names. Everything else passes through to the wrapped vectorised env (the rest of the
`VectorEnv` contract, including the asynchronous chunk API that pipelined rollouts use and the
reset ids of grouped episodes).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Sequence

import numpy as np


class ReplayEnv:
    """Wraps a `VectorEnv`; see the module docstring."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self._actions: list[list[np.ndarray]] = [[] for _ in range(env.num_envs)]
        self._reset_ids: list[int | None] = [None] * env.num_envs
        self._sent: deque[tuple[np.ndarray, list[int]]] = deque()

    # --- the attributes the runner switches or reads
    @property
    def auto_reset(self) -> bool:
        return self.env.auto_reset

    @auto_reset.setter
    def auto_reset(self, value: bool) -> None:
        self.env.auto_reset = value

    def __getattr__(self, name: str) -> Any:
        if name == "env":  # not set yet (copy/unpickle): no recursion
            raise AttributeError(name)
        return getattr(self.env, name)

    # --- recording
    def _record(self, actions: np.ndarray, env_ids: Sequence[int], executed: np.ndarray, info: dict[str, Any]) -> None:
        """Log what `env_ids` executed ((n, K, A) actions, (n, K) executed); a finished episode starts a new log."""
        ended = np.asarray(info["episode_done"], dtype=bool)
        for row, e in enumerate(env_ids):
            if ended[row]:
                self._actions[e] = []  # a new episode (auto-reset) or a finished one (fixed length)
            else:
                self._actions[e].extend(actions[row][executed[row]])
            self._reset_ids[e] = int(info["reset_id"][row])

    def reset(self, reset_ids: Sequence[int] | None = None, env_ids: Sequence[int] | None = None):
        envs = list(range(self.num_envs)) if env_ids is None else [int(e) for e in env_ids]
        cursor = self.env.get_reset_cursor()
        obs = self.env.reset(reset_ids, env_ids)
        ids = list(range(cursor, cursor + len(envs))) if reset_ids is None else [int(r) for r in reset_ids]
        for e, r in zip(envs, ids):
            self._actions[e], self._reset_ids[e] = [], r
        return obs

    def step(self, actions: np.ndarray):
        a = np.asarray(actions, dtype=np.float32)
        result = self.env.step(a)
        executed = np.asarray(result.info["executed"], dtype=bool)[:, None]
        self._record(a[:, None, :], range(self.num_envs), executed, result.info)
        return result

    def chunk_step(self, actions: np.ndarray):
        a = np.asarray(actions, dtype=np.float32)
        result = self.env.chunk_step(a)
        self._record(a, range(self.num_envs), np.asarray(result.info["executed"], dtype=bool), result.info)
        return result

    def chunk_step_async(self, actions: np.ndarray, env_ids: Sequence[int]) -> None:
        a = np.asarray(actions, dtype=np.float32)
        self.env.chunk_step_async(a, env_ids)
        self._sent.append((a, [int(e) for e in env_ids]))

    def chunk_step_wait(self):
        result = self.env.chunk_step_wait()
        actions, env_ids = self._sent.popleft()
        self._record(actions, env_ids, np.asarray(result.info["executed"], dtype=bool), result.info)
        return result

    # --- state
    def get_state(self, obs: dict[str, Any] | None = None) -> dict[str, Any]:
        """The reset id of each env's episode in flight and the actions it executed since (a replay log), and
        `obs`, the observation a rollout continues from (returned again by `set_state`)."""
        state = {"reset_ids": list(self._reset_ids),
                 "actions": [np.asarray(a, dtype=np.float32).reshape(len(a), self.spec.action_dim)
                             for a in self._actions],  # (0, A) for an episode that has not stepped yet
                 "auto_reset": self.env.auto_reset}
        if obs is not None:
            state["obs"] = obs
        return state

    def set_state(self, state: dict[str, Any]):
        """Reset every env to its logged reset id and replay its actions; returns the observation (the one
        `get_state` kept, when it kept one)."""
        ids, logs = state["reset_ids"], state["actions"]
        if len(ids) != self.num_envs or any(r is None for r in ids):
            raise ValueError(f"the env replay log holds {len(ids)} envs (reset ids {ids}), this env has "
                             f"{self.num_envs}; resume with the env.num_envs the checkpoint was written with")
        obs = self.reset(reset_ids=ids)
        for step in range(max((len(a) for a in logs), default=0)):
            envs = [e for e, a in enumerate(logs) if len(a) > step]
            actions = np.stack([logs[e][step] for e in envs])[:, None, :]
            self.chunk_step_async(actions, envs)
            result = self.chunk_step_wait()
            if np.asarray(result.info["episode_done"]).any():
                raise RuntimeError("an episode ended while replaying the env log of a checkpoint: the simulator is "
                                   "not deterministic from its reset ids, so the resume cannot be exact")
            for row, e in enumerate(envs):
                for cam, img in result.obs["images"].items():
                    obs["images"][cam][e] = img[row]
                obs["proprio"][e] = result.obs["proprio"][row]
                obs["instruction"][e] = result.obs["instruction"][row]
        return state.get("obs", obs)

    def close(self) -> None:
        self.env.close()

    def __enter__(self) -> "ReplayEnv":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["ReplayEnv"]
