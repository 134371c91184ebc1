"""CPU affinity of a whole process: pin every thread of a pid to a set of cores.

A leaf module (standard library only) shared by the env worker pool, which pins simulator workers,
and by `placement.cluster`, which pins the trainer or rollout process.
"""

from __future__ import annotations

import os
from typing import Sequence


def set_process_cores(pid: int, cores: Sequence[int]) -> None:
    """Pin every thread of process `pid` to `cores` (threads created later inherit it)."""
    tasks = f"/proc/{pid}/task"
    tids = [int(t) for t in os.listdir(tasks)] if os.path.isdir(tasks) else [pid]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, set(cores))
        except (ProcessLookupError, PermissionError):
            pass  # a thread that ended meanwhile


__all__ = ["set_process_cores"]
