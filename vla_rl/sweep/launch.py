"""Running one training run of a sweep as a `vla-rl train` subprocess, measuring its peak memory.

Each run is its own process (in its own session, so its env workers can be ended together): a
crash, a leak or a hung simulator stays inside that run. While it runs, the summed memory of its
process tree (PSS where the kernel reports it, else RSS) is sampled; when it exits, `wait4` adds
the largest single-process resident set. An interrupt (Ctrl-C, SIGTERM) is passed on as SIGINT so
the run closes its environments, then whatever is left of its session is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from vla_rl.sweep.grid import override_arg

POLL_SECONDS = 0.5
"""Interval between checks for the subprocess's exit (and progress callbacks)."""
MEMORY_SECONDS = 2.0
"""Interval between memory samples (reading PSS costs ~25 ms per process on a loaded 2-core machine)."""
GRACE_SECONDS = 30.0
"""How long an interrupted run may take to close its environments before it is killed."""


@dataclass
class LaunchRequest:
    """Everything a worker (this process or a Ray task) needs to run one training subprocess."""

    run_dir: str
    argv: list[str]
    """The full command line (python executable first)."""
    log_path: str
    """File receiving the subprocess's stdout and stderr."""
    resumed_from: str | None = None
    """Checkpoint the run resumes from (for the record)."""


@dataclass
class Attempt:
    """One execution of a run's subprocess."""

    started: float
    """Unix time the subprocess started."""
    seconds: float
    """Wall-clock seconds until it exited (setup included)."""
    returncode: int
    resumed_from: str | None
    peak_memory_bytes: int | None
    """Largest summed PSS (or RSS) of the process tree over the samples; None without psutil."""
    max_rss_bytes: int
    """Largest resident set of any single process of the run (the kernel's count via wait4)."""
    host: str


def tree_memory(pid: int) -> int | None:
    """Summed memory of a process and its descendants: PSS when available (shared pages split fairly), else RSS."""
    try:
        import psutil
    except ImportError:
        return None
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    total = 0
    for proc in procs:
        try:
            info = proc.memory_full_info()
            total += getattr(info, "pss", None) or info.rss
        except psutil.AccessDenied:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        except psutil.Error:
            pass
    return total


def _kill_session(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the child leads its own session, so its process group id is its pid
    except (ProcessLookupError, PermissionError):
        pass


def _reap(pid: int, timeout: float | None) -> tuple[int, int, object] | None:
    """wait4 the child, giving up after `timeout` seconds (None: block)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        got, status, usage = os.wait4(pid, 0 if deadline is None else os.WNOHANG)
        if got == pid:
            return got, status, usage
        if deadline is not None and time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def run_subprocess(request: LaunchRequest, on_sample: Callable[[], None] | None = None) -> Attempt:
    """Run the request's command to completion; returns exit code, seconds and peak memory.

    `on_sample` is called every POLL_SECONDS (progress display). KeyboardInterrupt is re-raised
    after the subprocess and its session are gone.
    """
    Path(request.log_path).parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start, t0 = time.time(), time.perf_counter()
    with open(request.log_path, "ab") as log:
        proc = subprocess.Popen(request.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
    peak: int | None = None
    next_sample = 0.0
    try:
        while True:
            got, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if got == proc.pid:
                break
            if time.monotonic() >= next_sample:
                next_sample = time.monotonic() + MEMORY_SECONDS
                sample = tree_memory(proc.pid)
                if sample is not None:
                    peak = max(peak or 0, sample)
            if on_sample is not None:
                on_sample()
            time.sleep(POLL_SECONDS)
    except BaseException:
        _kill_session(proc.pid, signal.SIGINT)
        if _reap(proc.pid, GRACE_SECONDS) is None:
            _kill_session(proc.pid, signal.SIGKILL)
            _reap(proc.pid, None)
        _kill_session(proc.pid, signal.SIGKILL)
        proc.returncode = -signal.SIGINT
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    _kill_session(proc.pid, signal.SIGKILL)  # env workers a crashed run left behind
    return Attempt(started=start, seconds=time.perf_counter() - t0, returncode=proc.returncode,
                   resumed_from=request.resumed_from, peak_memory_bytes=peak,
                   max_rss_bytes=int(usage.ru_maxrss) * 1024, host=os.uname().nodename)


def train_argv(recipe: Path, resume: Path | None = None) -> list[str]:
    """`python -m vla_rl.cli.main train RECIPE [runner.resume=...] --no-progress` with this interpreter."""
    argv = [sys.executable, "-m", "vla_rl.cli.main", "train", str(recipe)]
    if resume is not None:
        argv.append(override_arg("runner.resume", str(resume)))
    return [*argv, "--no-progress"]


def attempt_dict(attempt: Attempt) -> dict:
    return asdict(attempt)


__all__ = ["LaunchRequest", "Attempt", "run_subprocess", "tree_memory", "train_argv", "attempt_dict"]
