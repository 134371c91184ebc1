"""Progress of a sweep on the terminal: one bar for the grid, one per run in flight (env steps
against the budget, read from the run's metrics.jsonl as it grows)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from vla_rl.sweep.results import TOTAL_STEPS

TAIL_BYTES = 16384
"""How much of the end of metrics.jsonl is read to find the latest train row."""


def latest_env_steps(run_dir: Path) -> float | None:
    """Env steps of the last train row in a run's metrics.jsonl (None before the first iteration)."""
    path = Path(run_dir) / "logs" / "metrics.jsonl"
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - TAIL_BYTES))
            tail = f.read().decode("utf-8", errors="ignore")
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a partial line at the start of the tail
        if TOTAL_STEPS in row:
            return float(row[TOTAL_STEPS])
    return None


class SweepProgress:
    """rich progress bars: the grid, and the runs in flight (refreshed by `poll`)."""

    def __init__(self, console: Console, total_runs: int, budget_steps: int | None, enabled: bool = True) -> None:
        self.budget_steps = budget_steps
        self.enabled = enabled
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TextColumn("{task.fields[note]}"), console=console,
                                  disable=not enabled, transient=False)
        self._grid = self._progress.add_task("sweep", total=total_runs, note="")
        self._runs: dict[str, tuple[TaskID, Path]] = {}
        self._last_poll = 0.0

    def __enter__(self) -> "SweepProgress":
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def advance_grid(self, note: str = "") -> None:
        """Count one run as settled (done, skipped or failed)."""
        self._progress.update(self._grid, advance=1, note=note)

    def start_run(self, name: str, run_dir: Path, note: str) -> None:
        task = self._progress.add_task(f"  {name}", total=self.budget_steps, note=note)
        self._runs[name] = (task, run_dir)

    def finish_run(self, name: str, note: str) -> None:
        task, _ = self._runs.pop(name)
        self._progress.update(task, note=note)
        self._progress.stop_task(task)
        self._progress.remove_task(task)
        self.advance_grid(note=f"last: {name} {note}")

    def poll(self) -> None:
        """Refresh the env-step counts of runs in flight (at most once a second)."""
        if not self.enabled or time.monotonic() - self._last_poll < 1.0:
            return
        self._last_poll = time.monotonic()
        for task, run_dir in self._runs.values():
            steps = latest_env_steps(run_dir)
            if steps is not None:
                self._progress.update(task, completed=steps)


__all__ = ["SweepProgress", "latest_env_steps"]
