"""Progress of a sweep: one bar for the grid, one per run in flight (env steps against the budget,
read from the run's metrics.jsonl as it grows); rich bars on a terminal, plain lines elsewhere."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from vla_rl.progress import PlainBar, interactive
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
    """The grid's bar and one per run in flight (refreshed by `poll`): rich bars on a terminal,
    `vla_rl.progress.PlainBar` lines anywhere else (a log file, a pipe)."""

    def __init__(self, console: Console, total_runs: int, budget_steps: int | None, enabled: bool = True) -> None:
        self.budget_steps = budget_steps
        self.enabled = enabled
        self.console = console
        self.plain = enabled and not interactive(console.file)
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TextColumn("{task.fields[note]}"), console=console,
                                  disable=not enabled or self.plain, transient=False)
        self._grid = self._progress.add_task("sweep", total=total_runs, note="")
        self._grid_plain = PlainBar(total=total_runs, desc="sweep", unit="runs", leave=True, file=console.file) if self.plain else None
        self._runs: dict[str, tuple[TaskID, Path]] = {}
        self._plain_runs: dict[str, PlainBar] = {}
        self._last_poll = 0.0

    def __enter__(self) -> "SweepProgress":
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()
        if self._grid_plain is not None:
            self._grid_plain.close()

    def advance_grid(self, note: str = "") -> None:
        """Count one run as settled (done, skipped or failed)."""
        self._progress.update(self._grid, advance=1, note=note)
        if self._grid_plain is not None:
            self._grid_plain.set_postfix_str(note)
            self._grid_plain.update(1)

    def start_run(self, name: str, run_dir: Path, note: str) -> None:
        task = self._progress.add_task(f"  {name}", total=self.budget_steps, note=note)
        self._runs[name] = (task, run_dir)
        if self.plain:
            self._plain_runs[name] = PlainBar(total=self.budget_steps, desc=f"  {name}", unit="env steps", leave=True,
                                              file=self.console.file)
            self._plain_runs[name].set_postfix_str(note)

    def finish_run(self, name: str, note: str) -> None:
        task, _ = self._runs.pop(name)
        self._progress.update(task, note=note)
        self._progress.stop_task(task)
        self._progress.remove_task(task)
        if self.plain:
            bar = self._plain_runs.pop(name)
            bar.set_postfix_str(note)
            bar.close()
        self.advance_grid(note=f"last: {name} {note}")

    def poll(self) -> None:
        """Refresh the env-step counts of runs in flight (at most once a second)."""
        if not self.enabled or time.monotonic() - self._last_poll < 1.0:
            return
        self._last_poll = time.monotonic()
        for name, (task, run_dir) in self._runs.items():
            steps = latest_env_steps(run_dir)
            if steps is not None:
                self._progress.update(task, completed=steps)
                if self.plain:
                    bar = self._plain_runs[name]
                    bar.update(steps - bar.n)


__all__ = ["SweepProgress", "latest_env_steps"]
