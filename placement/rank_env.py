"""One rank's block of a data-parallel run's environments, with reset ids handed out as one process would.

A data-parallel run splits `env.num_envs` = N envs into equal blocks: rank r steps envs
[r*M, (r+1)*M) of the single-process run (M = N / ranks) in its own worker processes. One process
hands reset ids out from one cursor: the first reset gives env i the id cursor + i, and after every
chunk the envs whose episode ended get the next ids in env order. `RankEnv` keeps that cursor on
every rank and makes the same assignment: after each chunk the ranks exchange how many of their
episodes ended (one small all-gather), and rank r's ended envs take the ids after those of ranks
< r. So every reset id is used exactly once across ranks, and by the env a single-process run would
give it to (given the same episode ends).

For this the wrapped env runs with auto-reset off and `RankEnv` resets ended envs itself (same
`final_obs` / `reset_id` info as the env's own auto-reset). Explicit reset ids (grouped episodes,
evaluation) pass through. `get_state` / `set_state` gather and split the replay log
(`placement.replay_env`) so a checkpoint holds all N envs, as a single-process one does. Pipelined
(asynchronous) chunks are not supported: data-parallel runs use the collocated plan.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from placement.collective import Collective
from simulators.base import ResetCursor, concat_obs, group_ids, select_obs


class RankEnv(ResetCursor):
    """Wraps this rank's env (a `ReplayEnv`); see the module docstring."""

    def __init__(self, env: Any, comm: Collective, first_env: int, total_envs: int) -> None:
        self.env = env
        self.comm = comm
        self.first_env = first_env
        """Index of this rank's first env among all ranks' envs."""
        self.total_envs = total_envs
        self._auto_reset = bool(env.auto_reset)
        self._cursor = int(env.get_reset_cursor())
        env.auto_reset = False

    def __getattr__(self, name: str) -> Any:
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    @property
    def auto_reset(self) -> bool:
        return self._auto_reset

    @auto_reset.setter
    def auto_reset(self, value: bool) -> None:
        self._auto_reset = bool(value)

    # --- reset ids (the cursor is the run's, the same on every rank)
    def _take_ids(self, count: int) -> list[int]:
        """The next ids for `count` envs of this rank, after those of lower ranks (collective)."""
        counts = self.comm.gather(int(count))
        start = self._cursor + sum(counts[: self.comm.rank])
        self._cursor += sum(counts)
        return list(range(start, start + count))

    def reset(self, reset_ids: Sequence[int] | None = None, env_ids: Sequence[int] | None = None):
        """Reset envs to explicit ids, or (collective, when `reset_ids` is None) to the cursor's next ids."""
        if reset_ids is None:
            count = self.num_envs if env_ids is None else len(env_ids)
            reset_ids = self._take_ids(count)
        return self.env.reset(reset_ids=list(reset_ids), env_ids=env_ids)

    # --- stepping
    def chunk_step(self, actions: np.ndarray):
        """Step every env of this rank; with auto-reset, reset the ended ones to the run's next ids (collective)."""
        result = self.env.chunk_step(actions)
        if not self._auto_reset:
            return result
        ended = [int(e) for e in np.flatnonzero(np.asarray(result.info["episode_done"], dtype=bool))]
        ids = self._take_ids(len(ended))
        result.info["final_obs"] = result.obs
        if not ended:
            return result
        obs = self.env.reset(reset_ids=ids, env_ids=ended)
        reset_id = np.array(result.info["reset_id"], copy=True)
        reset_id[ended] = ids
        result.info["reset_id"] = reset_id
        return type(result)(obs, result.reward, result.terminated, result.truncated, result.info)

    def chunk_step_async(self, actions: np.ndarray, env_ids: Sequence[int]) -> None:
        raise NotImplementedError("a data-parallel rank steps its envs with chunk_step; pipelined rollouts "
                                  "(placement.pipeline_stages > 1) are not supported with a distributed engine")

    def next_group_ids(self, group_size: int) -> list[int]:
        """This rank's block of the reset ids one process would give all envs for a batch of grouped episodes."""
        ids, cursor = group_ids(self.get_reset_cursor(), self.first_env, self.num_envs, self.total_envs, group_size)
        self.set_reset_cursor(cursor)
        return ids

    # --- checkpoint state (collective)
    def get_state(self, obs: dict[str, Any] | None = None) -> dict[str, Any]:
        """The replay log of all ranks' envs (and their observation `obs`), in global env order (as a
        single-process checkpoint holds it)."""
        parts = self.comm.gather(self.env.get_state(obs))
        state = {"reset_ids": [r for p in parts for r in p["reset_ids"]],
                 "actions": [a for p in parts for a in p["actions"]],
                 "auto_reset": self._auto_reset}
        if obs is not None:
            state["obs"] = concat_obs([p["obs"] for p in parts])
        return state

    def set_state(self, state: dict[str, Any]):
        """Restore this rank's block of a whole-run replay log; returns this rank's observation."""
        if len(state["reset_ids"]) != self.total_envs:
            raise ValueError(f"the env replay log holds {len(state['reset_ids'])} envs, this run has "
                             f"{self.total_envs}; resume with the env.num_envs the checkpoint was written with")
        block = slice(self.first_env, self.first_env + self.num_envs)
        local = {"reset_ids": state["reset_ids"][block], "actions": state["actions"][block], "auto_reset": False}
        if "obs" in state:
            local["obs"] = select_obs(state["obs"], np.arange(block.start, block.stop))
        return self.env.set_state(local)

    def close(self) -> None:
        self.env.close()


__all__ = ["RankEnv"]
