"""The sweep's report from its finished runs: table.md, table.csv, runs.csv and the plots, and for runs
that compared their policy before and after RL (warm starts), paired.md and paired.csv.

Only runs whose folder is `done` (final evaluation present, config hash as planned) count, plus, with
`keep_changed`, finished runs of a config the sweep no longer asks for; a cell with some seeds
unfinished is aggregated over the finished ones (its `seeds` column says how many).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

from vla_rl.config.sweep import SweepConfig
from vla_rl.sweep.paired import PairedRow, paired_csv, paired_markdown, read_paired_row
from vla_rl.sweep.plan import RunPlan, run_status
from vla_rl.sweep.plots import plot_sweep
from vla_rl.sweep.results import RunResult, load_run_result
from vla_rl.sweep.table import CellRow, csv_table, markdown_table, summarize_cell

PLOTS = "plots"
"""Sub-folder of the sweep output holding the figures."""


@dataclass
class Report:
    """What `build_report` computed and wrote."""

    results: list[RunResult]
    rows: list[CellRow]
    axes: list[str]
    unfinished: list[str]
    """Runs of the grid without a valid final evaluation."""
    files: dict[str, Path] = field(default_factory=dict)
    """table_md, table_csv, runs_csv (and paired_md, paired_csv) -> path."""
    paired: list[PairedRow] = field(default_factory=list)
    """Before/after-RL comparisons of the finished runs that have one (warm-started runs)."""
    plots: list[Path] = field(default_factory=list)


def finished_results(plans: Sequence[RunPlan], keep_changed: bool = False) -> tuple[list[RunResult], list[str]]:
    """RunResults of the runs whose folders are done now (with keep_changed, also finished runs of a
    config the sweep no longer asks for); names of the others."""
    results, unfinished = [], []
    for plan in plans:
        status, detail = run_status(plan.run_dir, plan.config_hash)
        if replace(plan, status=status, detail=detail).counts_as_done(keep_changed):
            results.append(load_run_result(plan.run_dir, plan.spec.name, plan.spec.labels, plan.spec.seed))
        else:
            unfinished.append(plan.spec.name)
    return results, unfinished


def cell_rows(results: Sequence[RunResult], plans: Sequence[RunPlan], threshold: float) -> list[CellRow]:
    """One row per cell with at least one finished run, in grid order."""
    by_cell: dict[str, list[RunResult]] = {}
    labels: dict[str, dict[str, str]] = {}
    for plan in plans:
        labels.setdefault(plan.spec.cell_name, plan.spec.labels)
        by_cell.setdefault(plan.spec.cell_name, [])
    names = {plan.spec.name: plan.spec.cell_name for plan in plans}
    for r in results:
        by_cell[names[r.name]].append(r)
    return [summarize_cell(labels[c], rs, threshold) for c, rs in by_cell.items() if rs]


def runs_csv(results: Sequence[RunResult], axes: Sequence[str], threshold: float) -> str:
    """Per-run numbers (what each cell row aggregates)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run", *axes, "seed", "final_success", "successes", "episodes", "final_return", "env_steps", "train_seconds",
                     "env_steps_to_threshold", "train_seconds_to_threshold", "rollout_env_steps_per_s",
                     "rollout_actions_per_s", "train_env_steps_per_s", "peak_memory_bytes"])
    for r in results:
        hit = r.first_crossing(threshold)
        values = [r.final_success, r.successes, r.episodes, r.final_return, r.env_steps, r.train_seconds,
                  hit.env_steps if hit else None, hit.train_seconds if hit else None, r.rollout_env_steps_per_s,
                  r.rollout_actions_per_s, r.train_env_steps_per_s, r.peak_memory_bytes]
        writer.writerow([r.name, *(r.labels[a] for a in axes), r.seed, *("" if v is None else v for v in values)])
    return out.getvalue()


def build_report(sweep: SweepConfig, plans: Sequence[RunPlan], output_dir: Path, plots: bool = True,
                 keep_changed: bool = False) -> Report:
    """Read the finished runs, aggregate per cell, write the tables (and plots) under `output_dir`."""
    output_dir = Path(output_dir)
    axes = [axis.name for axis in sweep.grid]
    results, unfinished = finished_results(plans, keep_changed)
    rows = cell_rows(results, plans, sweep.success_threshold)
    report = Report(results=results, rows=rows, axes=axes, unfinished=unfinished)
    if not results:
        return report
    header = (f"# Sweep {sweep.name}\n\nFinal success: mean over seeds of each run's eval/final.json with a 95% "
              f"t-interval over seeds; pooled episodes with a 95% Wilson interval. Threshold {sweep.success_threshold:g}: "
              "first evaluation at or above it, mean over the seeds that reached it (reached/seeds). "
              "Training seconds exclude setup and evaluation. One policy action is one chunk of model.action_chunk "
              "env steps.\n\n")
    for key, name, text in (("table_md", "table.md", header + markdown_table(rows, axes)),
                            ("table_csv", "table.csv", csv_table(rows, axes)),
                            ("runs_csv", "runs.csv", runs_csv(results, axes, sweep.success_threshold))):
        path = output_dir / name
        path.write_text(text)
        report.files[key] = path
    runs = {plan.spec.name: plan for plan in plans}
    report.paired = [row for row in (read_paired_row(runs[r.name].run_dir, r.name, r.labels, r.seed) for r in results)
                     if row is not None]
    if report.paired:
        paired_header = (f"# Sweep {sweep.name}: before vs after RL\n\nEach run's SFT policy (its initial evaluation) "
                         "and RL policy (its final one) on the same held-out episodes, paired by McNemar's exact test; "
                         "the gain's interval is a 95% t-interval over seeds.\n\n")
        for key, name, text in (("paired_md", "paired.md", paired_header + paired_markdown(report.paired, axes)),
                                ("paired_csv", "paired.csv", paired_csv(report.paired, axes))):
            path = output_dir / name
            path.write_text(text)
            report.files[key] = path
    if plots:
        report.plots = plot_sweep(sweep.name, results, axes, sweep.figure_axis, sweep.success_threshold,
                                   output_dir / PLOTS)
    return report


__all__ = ["Report", "build_report", "finished_results", "cell_rows", "runs_csv", "PLOTS"]
