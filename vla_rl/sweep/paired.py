"""The paired table of a sweep whose runs evaluate before and after RL on the same episodes.

A warm-started run (`warmstart.enabled`) evaluates its SFT policy and its RL policy on the same
held-out seeds and writes `eval/comparison.json` (McNemar's exact test). Over a sweep's runs this
gives one row per run: SFT success, RL success, the gain in points, the discordant pairs and p; and
per cell the mean gain over seeds with a 95% t-interval (each seed one sample), how many seeds were
ahead at p < `alpha`, and the pooled counts. `vla-rl sweep configs/sweeps/quickstart_seeds.yaml`
prints it; the sweep writes it as `paired.md` and `paired.csv`.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from vla_rl.sweep.results import read_run_record
from vla_rl.sweep.stats import mean_t_interval

COMPARISON = Path("eval") / "comparison.json"
"""A training run's paired comparison of its initial and final evaluations, relative to its folder."""
ALPHA = 0.01
"""Significance level the table counts seeds against."""


@dataclass(frozen=True)
class PairedRow:
    """One run: its initial (SFT) and final (RL) evaluation on the same episodes."""

    run: str
    labels: dict[str, str]
    seed: int
    n: int
    before: int
    """Successes of the initial evaluation."""
    after: int
    """Successes of the final evaluation."""
    only_before: int
    only_after: int
    p_value: float
    wall_seconds: float | None = None
    """Wall time of the run's `vla-rl train` (all attempts; None where the sweep did not record it)."""

    @property
    def gain(self) -> float:
        """Points of success gained (after minus before), in [-100, 100]."""
        return 100.0 * (self.after - self.before) / max(self.n, 1)


@dataclass(frozen=True)
class GainSummary:
    """The gains of one cell's seeds."""

    labels: dict[str, str]
    seeds: int
    mean_gain: float
    low: float | None
    """95% t-interval over seeds of the mean gain (None with one seed)."""
    high: float | None
    significant: int
    """Seeds ahead at p < alpha."""
    alpha: float


def read_paired_row(run_dir: Path, run: str, labels: dict[str, str], seed: int) -> PairedRow | None:
    """The run's comparison, or None when it has none (no initial evaluation)."""
    path = Path(run_dir) / COMPARISON
    if not path.is_file():
        return None
    c = json.loads(path.read_text())
    attempts = (read_run_record(run_dir) or {}).get("attempts", [])
    wall = sum(float(a["seconds"]) for a in attempts if a.get("seconds") is not None) if attempts else None
    return PairedRow(run=run, labels=dict(labels), seed=seed, n=int(c["n"]), before=int(c["successes_a"]),
                     after=int(c["successes_b"]), only_before=int(c["only_a"]), only_after=int(c["only_b"]),
                     p_value=float(c["p_value"]), wall_seconds=wall)


def summarize_gains(rows: Sequence[PairedRow], alpha: float = ALPHA) -> list[GainSummary]:
    """One summary per cell (rows with the same labels), in first-seen order."""
    cells: dict[tuple, list[PairedRow]] = {}
    for row in rows:
        cells.setdefault(tuple(sorted(row.labels.items())), []).append(row)
    out = []
    for group in cells.values():
        mean, low, high = mean_t_interval([r.gain for r in group], low=-100.0, high=100.0)
        ahead = sum(r.p_value < alpha and r.after > r.before for r in group)
        out.append(GainSummary(labels=group[0].labels, seeds=len(group), mean_gain=mean, low=low, high=high,
                               significant=ahead, alpha=alpha))
    return out


def _rate(k: int, n: int) -> str:
    return f"{100 * k / max(n, 1):.1f}% ({k}/{n})"


def _wall(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def paired_markdown(rows: Sequence[PairedRow], axes: Sequence[str], alpha: float = ALPHA) -> str:
    """Per-run rows, then per cell the mean gain over seeds with its 95% t-interval."""
    head = [*axes, "seed", "SFT (before RL)", "SFT + RL", "gain (points)", "discordant (only SFT / only RL)",
            "McNemar exact p", "wall"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        lines.append("| " + " | ".join([*(r.labels[a] for a in axes), str(r.seed), _rate(r.before, r.n),
                                        _rate(r.after, r.n), f"{r.gain:+.1f}", f"{r.only_before} / {r.only_after}",
                                        f"{r.p_value:.3g}", _wall(r.wall_seconds)]) + " |")
    lines.append("")
    for s in summarize_gains(rows, alpha):
        where = ", ".join(f"{a}={s.labels[a]}" for a in axes)
        interval = f" [{s.low:+.1f}, {s.high:+.1f}] (95% t-interval over seeds)" if s.low is not None else ""
        lines.append(f"{where + ': ' if where else ''}mean gain {s.mean_gain:+.1f} points{interval} over {s.seeds} "
                     f"seed(s); {s.significant} of {s.seeds} ahead at McNemar p < {alpha:g}.")
    return "\n".join(lines) + "\n"


def paired_csv(rows: Sequence[PairedRow], axes: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run", *axes, "seed", "episodes", "before", "after", "gain_points", "only_before", "only_after",
                     "p_value", "wall_seconds"])
    for r in rows:
        writer.writerow([r.run, *(r.labels[a] for a in axes), r.seed, r.n, r.before, r.after, r.gain, r.only_before,
                         r.only_after, r.p_value, "" if r.wall_seconds is None else r.wall_seconds])
    return out.getvalue()


__all__ = ["ALPHA", "COMPARISON", "GainSummary", "PairedRow", "paired_csv", "paired_markdown", "read_paired_row",
           "summarize_gains"]
