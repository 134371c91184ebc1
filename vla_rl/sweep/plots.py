"""Learning curves of a sweep: success rate (and mean return) against env steps and training seconds.

One figure per value of the sweep's `plot_by` axis (a task); columns: env steps, training seconds;
rows: evaluation success rate, evaluation mean return; one line per combination of the other axes
(algorithm x family): the mean over seeds, shaded from the lowest to the highest seed (a 95%
t-interval over 2-3 seeds, t = 12.7 / 4.3, would cover the whole panel; the table carries the
t-intervals of the final numbers). Seeds evaluate at slightly different costs, so each seed's curve
is linearly interpolated onto the union of their evaluation points inside the range all seeds cover.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from vla_rl.sweep.results import RunResult

X_AXES = (("env_steps", "env steps"), ("train_seconds", "training seconds (setup and evaluation excluded)"))


def mean_curve(curves: Sequence[tuple[Sequence[float], Sequence[float]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, mean, low, high) over seeds from each seed's (x, y) points (pure; y: a rate in [0, 1] or a return).

    low and high are the smallest and largest seed at each x (with one seed, both equal the mean).
    The x grid is the union of the seeds' points within [largest first x, smallest last x].
    """
    curves = [(np.asarray(x, float), np.asarray(y, float)) for x, y in curves if len(x)]
    if not curves:
        return (np.empty(0),) * 4
    start = max(x[0] for x, _ in curves)
    stop = min(x[-1] for x, _ in curves)
    grid = np.unique(np.concatenate([x[(x >= start) & (x <= stop)] for x, _ in curves] + [np.array([start, stop])]))
    grid = grid[(grid >= start) & (grid <= stop)]
    values = np.stack([np.interp(grid, x, y) for x, y in curves])  # (seeds, points)
    return grid, values.mean(axis=0), values.min(axis=0), values.max(axis=0)


Y_AXES = (("success_rate", "evaluation success rate"), ("episode_return", "evaluation mean return"))


def _series(run: RunResult, x_field: str, y_field: str) -> tuple[list[float], list[float]]:
    points = [p for p in run.curve if getattr(p, y_field) is not None]
    return [getattr(p, x_field) for p in points], [getattr(p, y_field) for p in points]


def plot_group(title: str, lines: dict[str, list[RunResult]], threshold: float, path: Path) -> Path:
    """One figure: a line per entry of `lines` (label -> that cell's runs); columns: env steps and
    training seconds; rows: success rate and mean return of the evaluations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, grid = plt.subplots(2, 2, figsize=(11, 7.5), sharex="col", sharey="row")
    for row, (y_field, ylabel) in enumerate(Y_AXES):
        for col, (x_field, xlabel) in enumerate(X_AXES):
            ax = grid[row, col]
            for i, (label, runs) in enumerate(lines.items()):
                color = f"C{i % 10}"
                x, mean, low, high = mean_curve([_series(r, x_field, y_field) for r in runs])
                if len(x) == 0:
                    continue
                ax.plot(x, mean, color=color, marker="o", markersize=3, label=f"{label} (n={len(runs)})")
                if len(runs) > 1:
                    ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)
            if y_field == "success_rate":
                ax.axhline(threshold, color="grey", linestyle="--", linewidth=0.8)
                ax.set_ylim(-0.03, 1.03)
            if row == len(Y_AXES) - 1:
                ax.set_xlabel(xlabel)
            if col == 0:
                ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
    grid[0, 0].legend(fontsize=8, loc="upper left")
    fig.suptitle(f"{title}\nline: mean over seeds; shaded: range over seeds (min to max); "
                 f"dashed: success threshold {threshold:g}",
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_sweep(name: str, results: Sequence[RunResult], axes: Sequence[str], plot_by: str | None, threshold: float,
               out_dir: Path) -> list[Path]:
    """Write `out_dir/sweep_<name>[_<value>].png`, one per value of `plot_by`; returns the paths."""
    by = plot_by if plot_by in axes else None
    line_axes = [a for a in axes if a != by]
    groups: dict[str, dict[str, list[RunResult]]] = {}
    for r in results:
        group = r.labels[by] if by else ""
        line = " / ".join(r.labels[a] for a in line_axes) or name
        groups.setdefault(group, {}).setdefault(line, []).append(r)
    paths = []
    for group, lines in groups.items():
        stem = f"sweep_{name}" + (f"_{group}" if group else "")
        title = f"{name}: {group}" if group else name
        paths.append(plot_group(title, lines, threshold, Path(out_dir) / f"{stem}.png"))
    return paths


__all__ = ["mean_curve", "plot_group", "plot_sweep"]
