"""The comparison table: one row per cell of the grid, aggregated over its seeds; Markdown and CSV.

Per cell:
- final success: mean over seeds of each run's `eval/final.json` success rate, with a 95%
  t-interval over seeds (each seed one sample; none with one seed), and beside it the pooled
  episodes of all seeds with a 95% Wilson interval;
- env steps / training seconds to the first evaluation reaching the success threshold: mean over
  the seeds that reached it, with how many did ("not reached" when none);
- final return: mean over seeds of the final evaluation's mean episode return (informative where
  success is still 0, as in short CPU budgets);
- env steps spent, throughput (env steps/s and policy actions/s in rollout, env steps per training
  second) and peak memory, each the mean over seeds (peak memory: the largest).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from statistics import fmean
from typing import Sequence

from vla_rl.eval.stats import wilson_interval
from vla_rl.sweep.results import RunResult
from vla_rl.sweep.stats import mean_t_interval


@dataclass
class CellRow:
    """One row of the comparison table."""

    labels: dict[str, str]
    """Axis name -> label."""
    runs: list[str]
    """Run names aggregated (one per seed that finished)."""
    success_mean: float
    success_low: float | None
    """Lower end of the 95% t-interval over seeds (None with one seed)."""
    success_high: float | None
    pooled_successes: int
    pooled_episodes: int
    wilson_low: float
    wilson_high: float
    return_mean: float
    """Mean over seeds of the final evaluation's mean episode return."""
    threshold: float
    reached: int
    """Seeds whose evaluations reached the threshold."""
    steps_to_threshold: float | None
    """Mean over the seeds that reached it; None when none did."""
    seconds_to_threshold: float | None
    env_steps: float
    train_seconds: float
    rollout_env_steps_per_s: float | None
    rollout_actions_per_s: float | None
    train_env_steps_per_s: float | None
    peak_memory_bytes: int | None

    @property
    def seeds(self) -> int:
        return len(self.runs)


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return fmean(present) if present else None


def summarize_cell(labels: dict[str, str], results: Sequence[RunResult], threshold: float) -> CellRow:
    """Aggregate the finished runs (seeds) of one cell."""
    if not results:
        raise ValueError(f"cell {labels} has no finished run to summarise")
    mean, low, high = mean_t_interval([r.final_success for r in results])
    k, n = sum(r.successes for r in results), sum(r.episodes for r in results)
    w_low, w_high = wilson_interval(k, n)
    crossings = [c for c in (r.first_crossing(threshold) for r in results) if c is not None]
    peaks = [r.peak_memory_bytes for r in results if r.peak_memory_bytes is not None]
    return CellRow(
        labels=dict(labels), runs=[r.name for r in results],
        success_mean=mean, success_low=low, success_high=high,
        pooled_successes=k, pooled_episodes=n, wilson_low=w_low, wilson_high=w_high,
        return_mean=fmean(r.final_return for r in results),
        threshold=threshold, reached=len(crossings),
        steps_to_threshold=_mean([c.env_steps for c in crossings]),
        seconds_to_threshold=_mean([c.train_seconds for c in crossings]),
        env_steps=fmean(r.env_steps for r in results),
        train_seconds=fmean(r.train_seconds for r in results),
        rollout_env_steps_per_s=_mean([r.rollout_env_steps_per_s for r in results]),
        rollout_actions_per_s=_mean([r.rollout_actions_per_s for r in results]),
        train_env_steps_per_s=_mean([r.train_env_steps_per_s for r in results]),
        peak_memory_bytes=max(peaks) if peaks else None,
    )


# ---- rendering ---------------------------------------------------------------------------------
def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def _num(x: float | None, digits: int = 1) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:,.{digits}f}"


def _reach(row: CellRow, value: float | None, digits: int) -> str:
    if row.reached == 0:
        return f"not reached (0/{row.seeds})"
    return f"{_num(value, digits)} ({row.reached}/{row.seeds})"


def markdown_table(rows: Sequence[CellRow], axes: Sequence[str]) -> str:
    """The table in GitHub Markdown (percentages with one decimal)."""
    threshold = rows[0].threshold if rows else 0.0
    head = [*axes, "seeds", "success % (mean over seeds, 95% t-interval)", "pooled episodes (95% Wilson)",
            "final return", f"env steps to >= {100 * threshold:.0f}%", f"train s to >= {100 * threshold:.0f}%", "env steps spent",
            "rollout env steps/s", "rollout policy actions/s", "env steps per train s", "peak memory GiB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in rows:
        interval = "" if row.success_low is None else f" [{_pct(row.success_low)}, {_pct(row.success_high)}]"
        pooled = (f"{row.pooled_successes}/{row.pooled_episodes} = {_pct(row.pooled_successes / max(row.pooled_episodes, 1))}%"
                  f" [{_pct(row.wilson_low)}, {_pct(row.wilson_high)}]")
        memory = None if row.peak_memory_bytes is None else row.peak_memory_bytes / 2**30
        cells = [*(row.labels[a] for a in axes), str(row.seeds), f"{_pct(row.success_mean)}{interval}", pooled,
                 _num(row.return_mean, 2), _reach(row, row.steps_to_threshold, 0), _reach(row, row.seconds_to_threshold, 1),
                 _num(row.env_steps, 0), _num(row.rollout_env_steps_per_s), _num(row.rollout_actions_per_s),
                 _num(row.train_env_steps_per_s), _num(memory, 2)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


CSV_FIELDS = ("seeds", "runs", "success_mean", "success_t95_low", "success_t95_high", "pooled_successes",
              "pooled_episodes", "wilson95_low", "wilson95_high", "return_mean", "threshold", "seeds_reached",
              "env_steps_to_threshold", "train_seconds_to_threshold", "env_steps", "train_seconds",
              "rollout_env_steps_per_s", "rollout_actions_per_s", "train_env_steps_per_s", "peak_memory_bytes")
"""CSV columns after one column per grid axis (rates as fractions in [0, 1]; empty: not available)."""


def csv_table(rows: Sequence[CellRow], axes: Sequence[str]) -> str:
    """The table as CSV, full precision."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*axes, *CSV_FIELDS])
    for r in rows:
        values = [r.seeds, ";".join(r.runs), r.success_mean, r.success_low, r.success_high, r.pooled_successes,
                  r.pooled_episodes, r.wilson_low, r.wilson_high, r.return_mean, r.threshold, r.reached, r.steps_to_threshold,
                  r.seconds_to_threshold, r.env_steps, r.train_seconds, r.rollout_env_steps_per_s,
                  r.rollout_actions_per_s, r.train_env_steps_per_s, r.peak_memory_bytes]
        writer.writerow([*(r.labels[a] for a in axes), *("" if v is None else v for v in values)])
    return out.getvalue()


__all__ = ["CellRow", "summarize_cell", "markdown_table", "csv_table", "CSV_FIELDS"]
