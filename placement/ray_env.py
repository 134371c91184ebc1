"""The vectorised env of the Ray backend: N envs spread over Ray actors, behind the `VectorEnv` contract.

Each `EnvActor` holds a contiguous block of envs (a `SubprocVectorEnv` built by `make_env`, in
fixed-length mode) inside the placement-group bundle of its device; its simulator processes inherit
the actor's CUDA_VISIBLE_DEVICES. `RayVectorEnv` on the driver owns what must be global: the reset
cursor and auto-reset (an env whose episode ended is reset with the next cursor id, in env order,
exactly like `SubprocVectorEnv` does), so a run gives the same reset ids on either backend. It has
the same asynchronous chunk API (`chunk_step_async` / `chunk_step_wait`) for pipelined rollouts:
chunks of different actors are simulated at the same time.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from simulators.base import ChunkStepResult, Obs, PendingChunks, ResetCursor, StepResult, VectorEnv


class EnvActor:
    """One block of envs inside a Ray actor (wrapped with `ray.remote` by the backend)."""

    def __init__(self, env_cfg: Any) -> None:
        from simulators.registry import make_env

        self.env = make_env(replace(env_cfg, auto_reset=False))

    def spec(self):
        return self.env.spec

    def reset(self, reset_ids: list[int], env_ids: list[int]) -> Obs:
        obs = self.env.reset(reset_ids=reset_ids, env_ids=env_ids)
        return {"images": {c: v[env_ids] for c, v in obs["images"].items()}, "proprio": obs["proprio"][env_ids],
                "instruction": [obs["instruction"][e] for e in env_ids]}

    def chunk(self, actions: np.ndarray, env_ids: list[int]) -> ChunkStepResult:
        self.env.chunk_step_async(actions, env_ids)
        return self.env.chunk_step_wait()

    def devices(self) -> dict[str, Any]:
        """CUDA_VISIBLE_DEVICES of this actor and of each simulator process it started."""
        import ray

        workers = {}
        for pid in self.env.worker_pids():
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    environ = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
                workers[pid] = environ.get(b"CUDA_VISIBLE_DEVICES", b"").decode() or None
            except OSError:
                workers[pid] = None
        return {"CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
                "gpu_ids": [str(g) for g in ray.get_gpu_ids()], "workers": workers}

    def close(self) -> None:
        self.env.close()


def _cat_obs(parts: Sequence[Obs]) -> Obs:
    return {"images": {c: np.concatenate([p["images"][c] for p in parts]) for c in parts[0]["images"]},
            "proprio": np.concatenate([p["proprio"] for p in parts]),
            "instruction": [s for p in parts for s in p["instruction"]]}


@dataclass
class _Pending:
    env_ids: list[int]
    refs: list[tuple[int, list[int], Any]]
    """(actor index, global env ids of that actor in this chunk, result ref)."""


class RayVectorEnv(ResetCursor, PendingChunks, VectorEnv):
    """See the module docstring. `actors[i]` holds envs `blocks[i]` (contiguous, in order)."""

    def __init__(self, actors: Sequence[Any], blocks: Sequence[Sequence[int]], auto_reset: bool, seed: int) -> None:
        import ray

        self._ray = ray
        self.actors = list(actors)
        self.blocks = [list(b) for b in blocks]
        self.num_envs = sum(len(b) for b in self.blocks)
        self.auto_reset = auto_reset
        self._cursor = int(seed)
        self._where = {e: (a, j) for a, block in enumerate(self.blocks) for j, e in enumerate(block)}
        self._obs: Obs | None = None
        self._reset_id = np.zeros(self.num_envs, dtype=np.int64)
        self._pending: deque[_Pending] = deque()
        spec = ray.get(self.actors[0].spec.remote())
        self.spec = replace(spec, extras={**spec.extras, "num_workers": len(self.actors), "ray_actors": len(self.actors),
                                          "auto_reset": auto_reset})

    # --- contract
    def reset(self, reset_ids: Sequence[int] | None = None, env_ids: Sequence[int] | None = None) -> Obs:
        self._refuse_while_pending("reset")
        envs = list(range(self.num_envs)) if env_ids is None else [int(e) for e in env_ids]
        if len(set(envs)) != len(envs) or any(not 0 <= e < self.num_envs for e in envs):
            raise ValueError(f"env_ids={envs} must be distinct indices in [0, {self.num_envs})")
        ids = [self._next_id() for _ in envs] if reset_ids is None else [int(r) for r in reset_ids]
        if len(ids) != len(envs) or any(r < 0 for r in ids):
            raise ValueError(f"reset_ids={ids} must be {len(envs)} non-negative ids, one per reset env")
        self._reset(envs, ids)
        return self._obs

    def step(self, actions: np.ndarray) -> StepResult:
        res = self.chunk_step(np.asarray(actions, dtype=np.float32)[:, None, :])
        info = dict(res.info, executed=res.info["executed"][:, 0])
        return StepResult(res.obs, res.reward[:, 0], res.terminated[:, 0], res.truncated[:, 0], info)

    def chunk_step(self, actions: np.ndarray) -> ChunkStepResult:
        self._refuse_while_pending("chunk_step")
        self.chunk_step_async(actions, list(range(self.num_envs)))
        return self.chunk_step_wait()

    def chunk_step_async(self, actions: np.ndarray, env_ids: Sequence[int]) -> None:
        if self._obs is None:
            raise RuntimeError("call reset() before step()/chunk_step()")
        ids = [int(e) for e in env_ids]
        a = np.asarray(actions, dtype=np.float32)
        if a.ndim != 3 or a.shape[0] != len(ids) or a.shape[2] != self.spec.action_dim:
            raise ValueError(f"actions must have shape ({len(ids)}, K, {self.spec.action_dim}), got {a.shape}")
        touched = {self._where[e][0] for e in ids}
        busy = touched & {a_ for p in self._pending for a_, _, _ in p.refs}
        if busy:
            raise RuntimeError(f"env actors {sorted(busy)} are still stepping a pending chunk; call chunk_step_wait()")
        refs = []
        for actor in sorted(touched):
            rows = [i for i, e in enumerate(ids) if self._where[e][0] == actor]
            local = [self._where[ids[i]][1] for i in rows]
            refs.append((actor, [ids[i] for i in rows], self.actors[actor].chunk.remote(a[rows], local)))
        self._pending.append(_Pending(ids, refs))

    def chunk_step_wait(self) -> ChunkStepResult:
        if not self._pending:
            raise RuntimeError("chunk_step_wait() without a pending chunk_step_async()")
        p = self._pending.popleft()
        results = self._ray.get([ref for _, _, ref in p.refs])
        order = [e for _, envs, _ in p.refs for e in envs]
        position = {e: i for i, e in enumerate(order)}
        rows = [position[e] for e in p.env_ids]
        obs = _cat_obs([r.obs for r in results])
        obs = {"images": {c: v[rows] for c, v in obs["images"].items()}, "proprio": obs["proprio"][rows],
               "instruction": [obs["instruction"][i] for i in rows]}
        info = {k: np.concatenate([r.info[k] for r in results])[rows] for k in results[0].info if k != "final_obs"}
        reward, terminated, truncated = (np.concatenate([getattr(r, f) for r in results])[rows]
                                         for f in ("reward", "terminated", "truncated"))
        self._store(p.env_ids, obs)
        if self.auto_reset:
            info["final_obs"] = {"images": {c: v.copy() for c, v in obs["images"].items()},
                                 "proprio": obs["proprio"].copy(), "instruction": list(obs["instruction"])}
            ended = [e for e, done in zip(p.env_ids, info["episode_done"]) if done]
            if ended:
                self._reset(ended, [self._next_id() for _ in ended])
        info["reset_id"] = self._reset_id[p.env_ids].copy()
        return ChunkStepResult(self._rows(p.env_ids), reward, terminated, truncated, info)

    @property
    def pending_chunks(self) -> int:
        return len(self._pending)

    def worker_env_ids(self) -> list[list[int]]:
        """The env indices each env actor holds (an actor steps its envs one after another)."""
        return [list(b) for b in self.blocks]

    def devices(self) -> list[dict[str, Any]]:
        """What each env actor and its simulator processes were given (see `EnvActor.devices`)."""
        return self._ray.get([a.devices.remote() for a in self.actors])

    def close(self) -> None:
        for actor in self.actors:
            try:
                self._ray.get(actor.close.remote(), timeout=60)
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
            self._ray.kill(actor)
        self.actors = []

    # --- internals
    def _reset(self, envs: list[int], ids: list[int]) -> None:
        by_actor: dict[int, list[tuple[int, int]]] = {}
        for e, r in zip(envs, ids):
            by_actor.setdefault(self._where[e][0], []).append((e, r))
        refs = {a: self.actors[a].reset.remote([r for _, r in items], [self._where[e][1] for e, _ in items])
                for a, items in by_actor.items()}
        results = self._ray.get(list(refs.values()))
        self._store([e for a in refs for e, _ in by_actor[a]], _cat_obs(results))
        self._reset_id[envs] = ids

    def _store(self, envs: list[int], obs: Obs) -> None:
        if self._obs is None:
            if len(envs) != self.num_envs:
                raise RuntimeError("reset() all envs before stepping a subset")
            order = np.argsort(envs)
            self._obs = {"images": {c: v[order].copy() for c, v in obs["images"].items()},
                         "proprio": obs["proprio"][order].copy(), "instruction": [obs["instruction"][i] for i in order]}
            return
        for row, e in enumerate(envs):
            for c, v in obs["images"].items():
                self._obs["images"][c][e] = v[row]
            self._obs["proprio"][e] = obs["proprio"][row]
            self._obs["instruction"][e] = obs["instruction"][row]

    def _rows(self, envs: list[int]) -> Obs:
        o = self._obs
        return {"images": {c: v[envs].copy() for c, v in o["images"].items()}, "proprio": o["proprio"][envs].copy(),
                "instruction": [o["instruction"][e] for e in envs]}


__all__ = ["EnvActor", "RayVectorEnv"]
