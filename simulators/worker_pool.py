"""The env worker processes behind `SubprocVectorEnv`: start, message, pin, restart and stop them.

Each worker is a spawned process (fork hangs after a Vulkan/EGL context exists) that builds
`plan.factory` for a contiguous block of env indices and answers one command at a time over a pipe
(`simulators.worker.worker_main`). This module knows nothing of episodes: `send`/`receive` report a
worker that died or did not answer in time as a None reply, and the vector env decides what that
means for the episodes it held. A Python exception inside a worker comes back as an "error" reply
and is raised as `EnvWorkerError` with the worker's traceback.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from simulators.affinity import set_process_cores
from simulators.single_env import SingleEnvInfo
from simulators.worker import worker_main

log = logging.getLogger(__name__)


class EnvWorkerError(RuntimeError):
    """An env worker could not be built, raised an exception, or could not be recovered."""


@dataclass(frozen=True)
class WorkerPlan:
    """How to build the workers of one vectorised env (filled in by a backend's `from_config`)."""

    factory: str
    """"module:SingleEnvClass" built inside each worker."""
    kwargs: dict[str, Any]
    """Constructor arguments of that class (picklable)."""
    num_workers: int
    env_vars: dict[str, str]
    """Environment variables set in the worker before the simulator is imported."""


@dataclass
class Worker:
    """One worker process and the env indices it holds."""

    index: int
    env_ids: list[int]
    process: Any = None
    conn: Any = None


class WorkerPool:
    """`num_envs` env indices split into contiguous blocks, one block per worker process."""

    def __init__(self, plan: WorkerPlan, num_envs: int, start_timeout_s: float) -> None:
        self.plan = plan
        self.start_timeout_s = start_timeout_s
        self._ctx = mp.get_context("spawn")
        self._cores: list[int] | None = None
        blocks = np.array_split(np.arange(num_envs), min(plan.num_workers, num_envs))
        self.workers = [Worker(i, [int(e) for e in block]) for i, block in enumerate(blocks)]
        self.where = {e: (w.index, j) for w in self.workers for j, e in enumerate(w.env_ids)}
        """env index -> (worker index, position in that worker's block)."""

    def start(self) -> list[SingleEnvInfo]:
        """Start every worker and wait until each has built its envs (stops them all on failure)."""
        try:
            for w in self.workers:
                self.spawn(w)
            return [self.await_ready(w) for w in self.workers]
        except BaseException:
            self.stop()
            raise

    # ------------------------------------------------------------------ messages
    def call(self, requests: dict[int, tuple[str, Any]], timeout_s: float) -> dict[int, Any]:
        """Send one command per worker, then collect replies; None marks a dead or hung worker."""
        sent, replies = self.send(requests)
        return self.receive(sent, replies, time.monotonic() + timeout_s, timeout_s)

    def send(self, requests: dict[int, tuple[str, Any]]) -> tuple[list[int], dict[int, Any]]:
        """Send one command per worker; returns (workers sent to, None replies of those that could not be reached)."""
        replies: dict[int, Any] = {}
        sent = []
        for wi, msg in requests.items():
            try:
                self.workers[wi].conn.send(msg)
                sent.append(wi)
            except (OSError, ValueError):
                replies[wi] = None
        return sent, replies

    def receive(self, sent: list[int], replies: dict[int, Any], deadline: float, timeout_s: float) -> dict[int, Any]:
        """Collect the replies of `sent` until `deadline`; None marks a dead or hung worker."""
        replies = dict(replies)
        errors = []
        for wi in sent:
            conn = self.workers[wi].conn
            try:
                if not conn.poll(max(0.0, deadline - time.monotonic())):
                    log.warning("env worker %d did not answer within %.0f s", wi, timeout_s)
                    replies[wi] = None
                    continue
                kind, payload = conn.recv()
            except (EOFError, OSError):
                replies[wi] = None
                continue
            if kind == "error":
                errors.append(f"env worker {wi}: {payload}")
            replies[wi] = payload
        if errors:
            raise EnvWorkerError("\n".join(errors))
        return replies

    # ------------------------------------------------------------------ processes
    def spawn(self, w: Worker) -> None:
        parent, child = self._ctx.Pipe(duplex=True)
        p = self.plan
        w.process = self._ctx.Process(
            target=worker_main,
            args=(child, p.factory, p.kwargs, len(w.env_ids), p.env_vars),
            name=f"env-worker-{w.index}",
            daemon=True,
        )
        w.process.start()
        if self._cores is not None and hasattr(os, "sched_setaffinity"):
            set_process_cores(w.process.pid, self._cores)  # threads the worker starts later inherit it
        child.close()
        w.conn = parent

    def await_ready(self, w: Worker) -> SingleEnvInfo:
        try:
            ready = w.conn.poll(self.start_timeout_s)
            msg = w.conn.recv() if ready else None
        except (EOFError, OSError):
            w.process.join(1.0)
            raise EnvWorkerError(
                f"env worker {w.index} exited (code {w.process.exitcode}) while building its env; see its "
                "traceback above (workers are spawned: a script that builds envs needs an "
                "`if __name__ == '__main__':` guard)"
            ) from None
        if msg is None:
            self.kill(w)
            raise EnvWorkerError(
                f"env worker {w.index} did not build its env within {self.start_timeout_s:.0f} s; "
                "raise env.start_timeout_s if the machine is slow (first builds compile shaders)"
            )
        kind, payload = msg
        if kind != "ready":
            self.kill(w)
            raise EnvWorkerError(f"env worker {w.index} could not build its env: {payload}")
        return payload

    def restart(self, w: Worker) -> None:
        """Replace a dead or hung worker by a fresh process that has built its envs."""
        self.kill(w)
        self.spawn(w)
        self.await_ready(w)

    def kill(self, w: Worker, grace_s: float = 0.0) -> None:
        if w.process is not None and w.process.pid is not None:
            w.process.join(grace_s)
            if w.process.is_alive():
                w.process.kill()
                w.process.join(5.0)
        if w.conn is not None:
            w.conn.close()
        w.process, w.conn = None, None

    def stop(self) -> None:
        """Ask every worker to close its envs, then end the processes (killing those that linger)."""
        for w in self.workers:
            if w.conn is not None:
                try:
                    w.conn.send(("close", None))
                except (OSError, ValueError):
                    pass
        for w in self.workers:
            self.kill(w, grace_s=5.0)

    def pin(self, cores: Sequence[int] | None) -> None:
        """Run every worker (all its threads, and workers restarted later) on these CPU cores only.

        None lifts the restriction for workers started from now on. Linux only (a no-op elsewhere)."""
        self._cores = None if cores is None else sorted(int(c) for c in cores)
        if self._cores is None or not hasattr(os, "sched_setaffinity"):
            return
        for w in self.workers:
            if w.process is not None and w.process.pid is not None:
                set_process_cores(w.process.pid, self._cores)

    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers]


__all__ = ["EnvWorkerError", "Worker", "WorkerPlan", "WorkerPool"]
