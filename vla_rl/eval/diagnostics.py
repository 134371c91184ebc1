"""Training diagnostics of an RL run, from its logs/metrics.jsonl: what to look at when success does not move.

Per iteration: the policy's entropy per action token, KL to the initial (reference) policy, the
approximate KL of one update, the share of clipped ratios, the share of GRPO groups filtered out
(all successes or all failures: no signal), and the spread of the advantages (training-rollout and
evaluation success are in the learning curve). `plot_diagnostics`
draws one small panel per series the run logged; `diagnostics_lines` is the report's table (first
iteration, mean of the last five, min, max).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

DIAGNOSTICS: tuple[tuple[str, str], ...] = (
    ("train/entropy", "entropy per action token (nats)"),
    ("train/ref_kl", "KL to the initial policy (per token)"),
    ("train/approx_kl", "approx. KL of one update"),
    ("train/clip_fraction", "clipped share of ratios"),
    ("train/filtered_group_fraction", "share of groups filtered"),
    ("train/advantages/std", "advantage std"),
)
"""(metric key, label) of each diagnostic, in the order shown."""


def series(rows: Sequence[dict[str, float]], key: str, x_key: str = "iteration") -> tuple[list[float], list[float]]:
    """(x, values) of `key` over the rows that report a finite value of it (x: `x_key`, else the row's index)."""
    xs, ys = [], []
    for row in rows:
        value = row.get(key)
        if value is not None and math.isfinite(value):
            xs.append(row.get(x_key, len(xs)))
            ys.append(value)
    return xs, ys


def present(rows: Sequence[dict[str, float]]) -> list[tuple[str, str]]:
    """The diagnostics this run logged."""
    return [(key, label) for key, label in DIAGNOSTICS if series(rows, key)[0]]


def plot_diagnostics(rows: Sequence[dict[str, float]], path: str | Path) -> Path | None:
    """One panel per logged diagnostic (advantages with their min-max band); None when none was logged."""
    shown = present(rows)
    if not shown:
        return None
    from vla_rl.eval.pyplot import pyplot as _plt

    plt = _plt()
    cols = min(3, len(shown))
    nrows = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.0 * cols, 2.6 * nrows), dpi=110, squeeze=False)
    for ax, (key, label) in zip(axes.flat, shown):
        xs, ys = series(rows, key)
        ax.plot(xs, ys, "-", color="#264653", lw=1.2)
        if key == "train/advantages/std":
            lx, lo = series(rows, "train/advantages/min")
            hx, hi = series(rows, "train/advantages/max")
            if lx == xs and hx == xs:
                ax.fill_between(xs, lo, hi, color="#2a9d8f", alpha=0.2, lw=0, label="min..max")
                ax.legend(frameon=False, fontsize=7)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("RL iteration", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(shown):]:
        ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def diagnostics_lines(rows: Sequence[dict[str, float]]) -> list[str]:
    """A Markdown table of each logged diagnostic: first iteration, mean of the last 5, min, max."""
    shown = present(rows)
    if not shown:
        return []
    lines = ["| diagnostic | first iteration | last 5 (mean) | min | max |", "| --- | --- | --- | --- | --- |"]
    for key, label in shown:
        _, ys = series(rows, key)
        tail = ys[-5:]
        lines.append(f"| {label} (`{key}`) | {ys[0]:.4g} | {sum(tail) / len(tail):.4g} | {min(ys):.4g} | {max(ys):.4g} |")
    return lines


__all__ = ["DIAGNOSTICS", "diagnostics_lines", "plot_diagnostics", "present", "series"]
