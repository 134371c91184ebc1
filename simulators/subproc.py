"""`SubprocVectorEnv`: N `SingleEnv`s spread over spawned worker processes behind the `VectorEnv` contract.

The parent side of every CPU backend. It owns what must not depend on a worker surviving: the reset
cursor, episode bookkeeping (`EpisodeBook`), auto-reset and fixed-length semantics, and recovery.
A worker that dies or does not answer within its time limit is killed and restarted, its envs are
rebuilt and reset, their running episodes end as truncated with `info["worker_failed"]` set, and
`worker_restarts` counts it; the run goes on. A Python exception inside a worker is a bug or a
misconfiguration, not bad luck: it is raised as `EnvWorkerError` with the worker's traceback.

The processes themselves (spawning, messages, pinning, restarts) are `simulators.worker_pool`'s.
Envs are split into contiguous blocks, one block per worker; a worker steps its block in sequence.

Asynchronous chunks (for pipelined rollouts): `chunk_step_async(actions, env_ids)` sends a chunk to
the workers holding `env_ids` and returns at once; `chunk_step_wait()` collects the oldest pending
one and returns a `ChunkStepResult` for those envs only (rows in `env_ids` order), with the same
auto-reset and fixed-length semantics as `chunk_step`. Several may be pending if they touch disjoint
workers (`worker_env_ids()` says which envs share a worker); other calls wait for none and refuse
to run while any is pending.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from simulators.base import ChunkStepResult, EnvSpec, Obs, PendingChunks, ResetCursor, StepResult, VectorEnv
from simulators.episodes import ChunkRecord, EpisodeBook
from simulators.single_env import SingleEnvInfo, SingleObs
from simulators.worker_pool import EnvWorkerError, Worker, WorkerPlan, WorkerPool

if TYPE_CHECKING:
    from vla_rl.config.env import EnvConfig

log = logging.getLogger(__name__)


@dataclass
class _PendingChunk:
    """A chunk sent by `chunk_step_async` whose replies are not collected yet."""

    env_ids: list[int]
    workers: set[int]
    record: ChunkRecord
    active: np.ndarray
    sent: list[int]
    replies: dict[int, Any]
    deadline: float
    timeout_s: float


class SubprocVectorEnv(ResetCursor, PendingChunks, VectorEnv):
    """Vectorised env over worker processes; see the module docstring."""

    def __init__(
        self,
        *,
        backend: str,
        task: str,
        cameras: tuple[str, ...],
        image_size: int,
        reward_mode: str,
        num_envs: int,
        plan: WorkerPlan,
        auto_reset: bool,
        seed: int,
        step_timeout_s: float,
        start_timeout_s: float,
    ) -> None:
        self.num_envs = num_envs
        self.auto_reset = auto_reset
        self.worker_restarts = 0
        """How many times a dead or hung worker was restarted (each also logs a warning)."""
        self._cursor = int(seed)
        self._step_timeout = step_timeout_s
        self._start_timeout = start_timeout_s
        self._book = EpisodeBook(num_envs)
        self._obs: list[SingleObs | None] = [None] * num_envs
        self._pending: deque[_PendingChunk] = deque()
        self._closed = False
        self._pool = WorkerPool(plan, num_envs, start_timeout_s)
        self._workers, self._where = self._pool.workers, self._pool.where
        infos = self._pool.start()
        info: SingleEnvInfo = infos[0]
        self.spec = EnvSpec(
            backend=backend,
            task=task,
            action_dim=info.action_dim,
            control_hz=info.control_hz,
            max_episode_steps=info.max_episode_steps,
            cameras=tuple(cameras),
            image_size=(image_size, image_size),
            proprio_dim=info.proprio_dim,
            action_low=info.action_low,
            action_high=info.action_high,
            gripper_convention=info.gripper_convention,
            reward_mode=reward_mode,
            extras={**info.extras, "num_workers": len(self._workers), "auto_reset": auto_reset},
        )

    @classmethod
    def from_env_config(cls, backend: str, cfg: EnvConfig, plan: WorkerPlan) -> "SubprocVectorEnv":
        """The vector env of `cfg` (the `env` config section) run by `plan`'s workers."""
        return cls(backend=backend, task=cfg.task, cameras=tuple(cfg.cameras), image_size=cfg.image_size,
                   reward_mode=cfg.reward_mode, num_envs=cfg.num_envs, plan=plan, auto_reset=cfg.auto_reset,
                   seed=cfg.seed, step_timeout_s=cfg.step_timeout_s, start_timeout_s=cfg.start_timeout_s)

    # ------------------------------------------------------------------ contract
    def reset(self, reset_ids: Sequence[int] | None = None, env_ids: Sequence[int] | None = None) -> Obs:
        self._refuse_while_pending("reset")
        env_list = list(range(self.num_envs)) if env_ids is None else [int(e) for e in env_ids]
        bad = [e for e in env_list if not 0 <= e < self.num_envs]
        if bad or len(set(env_list)) != len(env_list):
            raise ValueError(f"env_ids={list(env_list)} must be distinct indices in [0, {self.num_envs})")
        if reset_ids is None:
            id_list = [self._next_id() for _ in env_list]
        else:
            id_list = [int(r) for r in reset_ids]
            if len(id_list) != len(env_list) or any(r < 0 for r in id_list):
                raise ValueError(
                    f"reset_ids={list(reset_ids)} must be {len(env_list)} non-negative ids, one per reset env"
                )
        self._reset_envs(env_list, id_list)
        return self._batch()

    def step(self, actions: np.ndarray) -> StepResult:
        a = np.asarray(actions, dtype=np.float32)
        if a.ndim != 2:
            raise ValueError(f"step expects actions of shape (num_envs, action_dim), got {a.shape}")
        res = self.chunk_step(a[:, None, :])
        info = dict(res.info, executed=res.info["executed"][:, 0])
        return StepResult(res.obs, res.reward[:, 0], res.terminated[:, 0], res.truncated[:, 0], info)

    def chunk_step(self, actions: np.ndarray) -> ChunkStepResult:
        self._refuse_while_pending("chunk_step")
        a = self._check_actions(actions)
        return self._finish_chunk(self._start_chunk(a, list(range(self.num_envs))))

    # ------------------------------------------------------------------ asynchronous chunks
    def chunk_step_async(self, actions: np.ndarray, env_ids: Sequence[int]) -> None:
        """Send a chunk (len(env_ids), K, A) to the envs `env_ids` and return without waiting.

        The workers holding these envs must not be busy with another pending chunk; collect results
        in sending order with `chunk_step_wait`.
        """
        ids = [int(e) for e in env_ids]
        if not ids or len(set(ids)) != len(ids) or any(not 0 <= e < self.num_envs for e in ids):
            raise ValueError(f"env_ids={ids} must be distinct indices in [0, {self.num_envs})")
        a = self._check_actions(actions, rows=len(ids))
        workers = {self._where[e][0] for e in ids}
        busy = workers & set().union(*(p.workers for p in self._pending)) if self._pending else set()
        if busy:
            raise RuntimeError(
                f"env workers {sorted(busy)} are still stepping a pending chunk; call chunk_step_wait() first, or "
                "send chunks to envs of other workers (worker_env_ids() lists which envs share a worker)"
            )
        self._pending.append(self._start_chunk(a, ids))

    def chunk_step_wait(self) -> ChunkStepResult:
        """Collect the oldest pending `chunk_step_async`: results for its env_ids only, in their order."""
        if not self._pending:
            raise RuntimeError("chunk_step_wait() without a pending chunk_step_async()")
        return self._finish_chunk(self._pending.popleft())

    @property
    def pending_chunks(self) -> int:
        """How many `chunk_step_async` calls await `chunk_step_wait`."""
        return len(self._pending)

    def pin_workers(self, cores: Sequence[int] | None) -> None:
        """Run every worker process (all its threads, and workers restarted later) on these CPU cores only.

        None lifts the restriction for workers started from now on. Linux only (a no-op elsewhere)."""
        self._pool.pin(cores)

    def worker_env_ids(self) -> list[list[int]]:
        """The env indices each worker process holds (envs of one worker are stepped one after another)."""
        return [list(w.env_ids) for w in self._workers]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.stop()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # ------------------------------------------------------------------ simulator state
    def get_state(self, env_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Snapshots of envs (simulator state plus episode bookkeeping), for `set_state`."""
        self._refuse_while_pending("get_state")
        env_list = list(range(self.num_envs)) if env_ids is None else [int(e) for e in env_ids]
        sims = self._per_env_call("get_state", env_list, [None] * len(env_list))
        return [{"sim": s, "episode": self._book.get(e)} for e, s in zip(env_list, sims)]

    def set_state(self, states: Sequence[dict[str, Any]], env_ids: Sequence[int] | None = None) -> Obs:
        """Restore snapshots from `get_state` into `env_ids` (all when None); returns all observations."""
        self._refuse_while_pending("set_state")
        env_list = list(range(self.num_envs)) if env_ids is None else [int(e) for e in env_ids]
        if len(states) != len(env_list):
            raise ValueError(f"got {len(states)} states for {len(env_list)} envs")
        obs = self._per_env_call("set_state", env_list, [s["sim"] for s in states])
        for e, o, s in zip(env_list, obs, states):
            self._obs[e] = o
            self._book.put(e, s["episode"])
        return self._batch()

    # ------------------------------------------------------------------ internals
    def _start_chunk(self, a: np.ndarray, env_ids: list[int]) -> _PendingChunk:
        """Send chunk `a` (rows = env_ids) to the workers of `env_ids`; other envs are not stepped."""
        book, k = self._book, a.shape[1]
        rec = ChunkRecord(book, k)
        active = np.zeros(self.num_envs, dtype=bool)
        active[env_ids] = ~book.done[env_ids]
        full = np.zeros((self.num_envs, *a.shape[1:]), dtype=np.float32)
        full[env_ids] = a
        steps_left = book.steps_left()
        workers = {self._where[e][0] for e in env_ids}
        requests = {}
        for wi in sorted(workers):
            ids = self._workers[wi].env_ids
            if active[ids].any():
                requests[wi] = ("chunk", (full[ids], active[ids].tolist(), steps_left[ids].tolist()))
        per_env_steps = max(len(self._workers[wi].env_ids) for wi in workers) * k
        timeout_s = self._step_timeout * per_env_steps
        sent, replies = self._pool.send(requests)
        return _PendingChunk(env_ids, workers, rec, active, sent, replies, time.monotonic() + timeout_s, timeout_s)

    def _finish_chunk(self, p: _PendingChunk) -> ChunkStepResult:
        """Collect the replies of a sent chunk, close ended episodes, auto-reset; result rows = p.env_ids."""
        book, rec, active = self._book, p.record, p.active
        replies = self._pool.receive(p.sent, p.replies, p.deadline, p.timeout_s)
        for wi, reply in replies.items():
            w = self._workers[wi]
            if reply is None:
                self._recover(w)
                for e in w.env_ids:
                    if active[e]:
                        rec.fail(e)
                continue
            for e, res in zip(w.env_ids, reply):
                if res is not None and res["rewards"]:
                    self._obs[e] = res["obs"]
                    rec.add(e, res["rewards"], res["successes"], res["terminated"])
        rows = np.asarray(p.env_ids)
        whole = len(p.env_ids) == self.num_envs and np.array_equal(rows, np.arange(self.num_envs))
        info = rec.info()
        if not whole:
            info = {key: value[rows] for key, value in info.items()}
        if self.auto_reset:
            info["final_obs"] = self._batch(None if whole else p.env_ids)
            ended = [int(e) for e in rows[rec.ended[rows]]]
            if ended:
                self._reset_envs(ended, [self._next_id() for _ in ended])
        else:
            book.done[rows] |= rec.ended[rows]
        info["reset_id"] = book.reset_id[rows].copy()
        return ChunkStepResult(self._batch(None if whole else p.env_ids), rec.reward[rows], rec.terminated[rows],
                               rec.truncated[rows], info)

    def _check_actions(self, actions: np.ndarray, rows: int | None = None) -> np.ndarray:
        if any(o is None for o in self._obs):
            raise RuntimeError("call reset() before step()/chunk_step()")
        a = np.asarray(actions, dtype=np.float32)
        rows = self.num_envs if rows is None else rows
        want = (rows, "K", self.spec.action_dim)
        if a.ndim != 3 or a.shape[0] != rows or a.shape[2] != self.spec.action_dim or a.shape[1] < 1:
            raise ValueError(f"chunk_step expects actions of shape {want}, got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError("actions contain NaN or inf")
        return a

    def _batch(self, env_ids: Sequence[int] | None = None) -> Obs:
        obs = self._obs if env_ids is None else [self._obs[e] for e in env_ids]
        return {
            "images": {c: np.stack([o["images"][c] for o in obs]) for c in self.spec.cameras},
            "proprio": np.stack([o["proprio"] for o in obs]).astype(np.float32),
            "instruction": [o["instruction"] for o in obs],
        }

    def _reset_envs(self, env_ids: list[int], reset_ids: list[int]) -> None:
        by_worker: dict[int, list[tuple[int, int]]] = {}
        for e, r in zip(env_ids, reset_ids):
            wi, j = self._where[e]
            by_worker.setdefault(wi, []).append((j, r))
        requests = {wi: ("reset", items) for wi, items in by_worker.items()}
        replies = self._pool.call(requests, self._start_timeout)
        for wi, reply in replies.items():
            if reply is None:  # recover once, then try the same resets again
                self._recover(self._workers[wi])
                reply = self._pool.call({wi: requests[wi]}, self._start_timeout)[wi]
                if reply is None:
                    raise EnvWorkerError(f"env worker {wi} failed twice in a row while resetting; see the log")
            w = self._workers[wi]
            for (j, r), (o, max_steps) in zip(by_worker[wi], reply):
                e = w.env_ids[j]
                self._obs[e] = o
                self._book.start([e], [r], [max_steps])

    def _per_env_call(self, cmd: str, env_ids: list[int], args: list[Any]) -> list[Any]:
        by_worker: dict[int, list[tuple[int, Any, int]]] = {}
        for pos, (e, arg) in enumerate(zip(env_ids, args)):
            wi, j = self._where[e]
            by_worker.setdefault(wi, []).append((j, arg, pos))
        requests = {
            wi: (cmd, [j for j, _, _ in items] if cmd == "get_state" else [(j, a) for j, a, _ in items])
            for wi, items in by_worker.items()
        }
        replies = self._pool.call(requests, self._start_timeout)
        out: list[Any] = [None] * len(env_ids)
        for wi, reply in replies.items():
            if reply is None:
                self._recover(self._workers[wi])
                raise EnvWorkerError(f"env worker {wi} died during {cmd}; it was restarted, retry the call")
            for (_, _, pos), value in zip(by_worker[wi], reply):
                out[pos] = value
        return out

    def _recover(self, w: Worker) -> None:
        """Replace a dead or hung worker and reset its envs to their current reset ids."""
        self.worker_restarts += 1
        log.warning(
            "env worker %d (envs %s) died or hung; restarting it (restart #%d)", w.index, w.env_ids, self.worker_restarts
        )
        self._pool.restart(w)
        items = [(j, int(self._book.reset_id[e])) for j, e in enumerate(w.env_ids)]
        if self._pool.call({w.index: ("reset", items)}, self._start_timeout)[w.index] is None:
            raise EnvWorkerError(f"env worker {w.index} failed again right after a restart")

    def worker_pids(self) -> list[int]:
        """Process ids of the workers, in env order (for diagnostics and fault-injection tests)."""
        return self._pool.pids()


__all__ = ["EnvWorkerError", "SubprocVectorEnv", "WorkerPlan"]
