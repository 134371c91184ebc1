"""The sweep's own record in each run folder, `sweep_run.json`: which cell and seed the run is, the
config hash it was planned with, and every attempt (exit code, seconds, peak memory, resumed from).

Attempts accumulate across sweep invocations (an interrupted run resumed later has two); the table
reads the peak memory from here, everything else from the run's own outputs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from vla_rl.sweep.launch import Attempt, attempt_dict
from vla_rl.sweep.plan import RunPlan
from vla_rl.sweep.results import RUN_RECORD, read_run_record


def append_attempt(plan: RunPlan, attempt: Attempt) -> dict:
    """Add one attempt to the run's record (starting a new record when the hash changed); returns it."""
    old = read_run_record(plan.run_dir) or {}
    attempts = old.get("attempts", []) if old.get("config_hash") == plan.config_hash else []
    record = {
        "name": plan.spec.name,
        "cell": plan.spec.labels,
        "seed": plan.spec.seed,
        "config_hash": plan.config_hash,
        "attempts": [*attempts, attempt_dict(attempt)],
        "finished": attempt.returncode == 0,
    }
    path = plan.run_dir / RUN_RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)
    return record


def last_log_lines(log_path: Path, n: int = 15) -> str:
    """The end of a run's train.log (shown when a run fails)."""
    try:
        lines = Path(log_path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


__all__ = ["append_attempt", "last_log_lines"]
