"""An object living in a spawned process of its own, called over a pipe: the local backend's "actor".

`ProcessHost("module:Class", kwargs)` starts a process (spawn), builds the object there and answers
method calls in order. `submit(method, *args)` sends a call and returns a ticket; `result(ticket)`
waits for it (tickets are answered in submission order); `call` does both. An exception inside the
process comes back as `RemoteCallError` with its traceback. The process is pinned to `cores` and
gets `env_vars` (e.g. CUDA_VISIBLE_DEVICES) before it imports anything heavy.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import sys
import traceback
from typing import Any, Sequence


class RemoteCallError(RuntimeError):
    """A call raised inside the hosted process (the message carries its traceback)."""


def _host_main(conn: Any, factory: str, kwargs: dict[str, Any], env_vars: dict[str, str]) -> None:
    os.environ.update(env_vars)
    sys.stdin.close()
    sys.stdin = open(os.devnull)  # noqa: SIM115 - never block on a prompt
    try:
        module, _, name = factory.partition(":")
        obj = getattr(importlib.import_module(module), name)(**kwargs)
        conn.send(("ready", None))
    except BaseException as exc:  # noqa: BLE001 - report any build failure to the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"))
        return
    while True:
        try:
            method, args, kw = conn.recv()
        except (EOFError, OSError):
            return
        if method == "__close__":
            return
        try:
            conn.send(("ok", getattr(obj, method)(*args, **kw)))
        except Exception as exc:  # noqa: BLE001 - the caller decides
            conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"))


class ProcessHost:
    """See the module docstring."""

    def __init__(self, factory: str, kwargs: dict[str, Any], cores: Sequence[int] | None = None,
                 env_vars: dict[str, str] | None = None, name: str = "host", start_timeout_s: float = 300.0) -> None:
        ctx = mp.get_context("spawn")
        self.name = name
        self._conn, child = ctx.Pipe(duplex=True)
        self._process = ctx.Process(target=_host_main, args=(child, factory, kwargs, dict(env_vars or {})),
                                    name=name, daemon=True)
        self._process.start()
        child.close()
        if cores and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(self._process.pid, set(cores))  # threads it starts later inherit this
        self._submitted = 0
        self._answered = 0
        self._closed = False
        if not self._conn.poll(start_timeout_s):
            self.close()
            raise RemoteCallError(f"{name} did not start within {start_timeout_s:.0f} s")
        kind, payload = self._conn.recv()
        if kind != "ready":
            self.close()
            raise RemoteCallError(f"{name} could not build its object: {payload}")

    @property
    def pid(self) -> int:
        return self._process.pid

    def submit(self, method: str, *args: Any, **kwargs: Any) -> int:
        """Send a call; returns its ticket for `result`."""
        self._conn.send((method, args, kwargs))
        self._submitted += 1
        return self._submitted

    def result(self, ticket: int) -> Any:
        """The return value of call `ticket` (the calls before it must have been collected)."""
        if ticket != self._answered + 1:
            raise RuntimeError(f"{self.name}: results come back in order; collect ticket {self._answered + 1} first")
        try:
            kind, payload = self._conn.recv()
        except (EOFError, OSError):
            raise RemoteCallError(f"{self.name} (pid {self.pid}) died; exit code {self._process.exitcode}") from None
        self._answered += 1
        if kind == "error":
            raise RemoteCallError(f"{self.name}: {payload}")
        return payload

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.result(self.submit(method, *args, **kwargs))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._conn.send(("__close__", (), {}))
        except (OSError, ValueError):
            pass
        self._process.join(10.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5.0)
        self._conn.close()


__all__ = ["ProcessHost", "RemoteCallError"]
