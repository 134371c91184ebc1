"""Sweeps: a grid of training runs (algorithm x model family x task x seed) at equal cost, each in
its own `vla-rl train` subprocess and folder, resumable, compared in one table with plots.

    grid.py       sweep file -> runs with stable names        plan.py     configs, hashes, what is left
    launch.py     one run as a subprocess, peak memory        executors.py  local (sequential) or Ray
    results.py    a finished run's numbers from its folder    table.py    per-cell aggregation, Markdown/CSV
    stats.py      t-intervals over seeds                      plots.py    success vs env steps / seconds
    report.py     tables and plots from finished runs         driver.py   plan -> execute -> report
"""

from vla_rl.sweep.driver import SweepError, SweepOutcome, run_sweep
from vla_rl.sweep.grid import RunSpec, expand_grid

__all__ = ["run_sweep", "SweepOutcome", "SweepError", "RunSpec", "expand_grid"]
