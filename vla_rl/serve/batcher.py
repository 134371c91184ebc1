"""Micro-batching: requests from many connections answered by one policy call.

Every connection submits its validated observation and awaits its own future. One loop takes the
oldest waiting request, waits at most `window_s` after its arrival for others with the same
signature (camera set and shapes) to join, up to `max_batch` of them (it stops waiting early when
every open connection already has its request in), runs the batched policy call
in a worker thread (so the event loop keeps accepting connections and answering health checks),
and hands row i of the result to request i. Requests of another signature wait for the next batch.

If a batched call fails, its requests are retried one at a time so that one bad request only
fails its own client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from vla_rl.serve.schema import Observation, stack_observations

log = logging.getLogger("vla_rl.serve")

InferFn = Callable[[dict[str, Any]], np.ndarray]
"""Batched observation dict (N items) -> actions (N, K, A)."""


class ServerBusy(RuntimeError):
    """The request queue is full; the client should retry later."""


@dataclass(eq=False)  # compared by identity (deque.remove), never by the arrays inside
class _Waiting:
    obs: Observation
    future: asyncio.Future
    arrived: float = field(default_factory=time.perf_counter)


@dataclass
class BatchStats:
    """Counters the server reports in its metadata and logs."""

    requests: int = 0
    batches: int = 0
    failed: int = 0
    largest_batch: int = 0


class Batcher:
    """Collects observations into policy calls (see the module docstring). Create inside a running loop."""

    def __init__(self, infer: InferFn, window_s: float, max_batch: int, max_queue: int,
                 open_requesters: Callable[[], int] | None = None) -> None:
        self._infer, self.window_s, self.max_batch, self.max_queue = infer, window_s, max_batch, max_queue
        self._open_requesters = open_requesters
        """How many clients could still submit (each connection has at most one request in flight); once
        all of them are waiting the batch runs without sitting out the window."""
        self._waiting: deque[_Waiting] = deque()
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy")
        self.stats = BatchStats()

    async def submit(self, obs: Observation) -> tuple[np.ndarray, dict[str, float]]:
        """Actions (K, A) for one observation, and its timing (queue_ms, infer_ms, batch_size)."""
        if len(self._waiting) >= self.max_queue:
            raise ServerBusy(f"server busy: {len(self._waiting)} requests waiting; retry shortly")
        item = _Waiting(obs, asyncio.get_running_loop().create_future())
        self._waiting.append(item)
        self._wakeup.set()
        return await item.future

    def _matching(self, signature: tuple) -> list[_Waiting]:
        return [w for w in self._waiting if w.obs.signature == signature][: self.max_batch]

    def _everyone_waiting(self) -> bool:
        return self._open_requesters is not None and len(self._waiting) >= self._open_requesters()

    async def run(self) -> None:
        """The batching loop; runs until cancelled."""
        try:
            while True:
                while not self._waiting:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                batch = await self._collect()
                try:
                    await self._answer(batch)
                except Exception as exc:  # noqa: BLE001 - a bug here must fail these requests, not stall the server
                    log.exception("batch of %d failed outside the policy call", len(batch))
                    for item in batch:
                        if not item.future.done():
                            item.future.set_exception(exc)
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def _collect(self) -> list[_Waiting]:
        """Wait out the window of the oldest request, then take its batch off the queue."""
        first = self._waiting[0]
        deadline = first.arrived + self.window_s
        while len(self._matching(first.obs.signature)) < self.max_batch and not self._everyone_waiting():
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                break
        batch = self._matching(first.obs.signature)
        for item in batch:
            self._waiting.remove(item)
        return [w for w in batch if not w.future.done()]  # clients that left meanwhile

    async def _answer(self, batch: list[_Waiting]) -> None:
        if not batch:
            return
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        try:
            actions = await loop.run_in_executor(self._executor, self._call, [w.obs for w in batch])
        except Exception as exc:  # noqa: BLE001 - reported to the clients, server keeps running
            if len(batch) > 1:
                for item in batch:  # isolate the request that broke the batch
                    await self._answer([item])
                return
            self.stats.failed += 1
            if not batch[0].future.done():
                batch[0].future.set_exception(exc)
            return
        infer_ms = 1000 * (time.perf_counter() - start)
        self.stats.requests += len(batch)
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        for i, item in enumerate(batch):
            timing = {"queue_ms": 1000 * (start - item.arrived), "infer_ms": infer_ms, "batch_size": float(len(batch))}
            if not item.future.done():
                item.future.set_result((np.array(actions[i], dtype=np.float32), timing))

    def _call(self, items: list[Observation]) -> np.ndarray:
        actions = np.asarray(self._infer(stack_observations(items)))
        if actions.ndim != 3 or actions.shape[0] != len(items):
            raise RuntimeError(f"policy returned actions of shape {actions.shape} for {len(items)} observations; "
                               "expected (N, K, A)")
        return actions


__all__ = ["BatchStats", "Batcher", "InferFn", "ServerBusy"]
