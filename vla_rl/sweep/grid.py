"""Grid expansion: a `SweepConfig` becomes the list of runs it asks for, each with a stable name.

Pure functions over the sweep config (no file system, no config loading): the same sweep file
always gives the same runs, names and override lists, in the same order (axes in file order, the
last axis varying fastest, seeds innermost).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

from vla_rl.config.core import ConfigError
from vla_rl.config.sweep import SweepConfig

SEP = "__"
"""Joins the cell labels and the seed in a run name: `ppo__cnn__PushCube-v1__seed0`."""


@dataclass(frozen=True)
class RunSpec:
    """One training run of the grid: a cell (one label per axis) and a seed."""

    name: str
    """Stable folder name: the cell's labels then `seed<k>`, joined by `__`."""
    cell: tuple[tuple[str, str], ...]
    """(axis name, label) per grid axis, in axis order."""
    seed: int
    """The seed every `seed_keys` entry is set to."""
    overrides: tuple[tuple[str, Any], ...]
    """(dotted key, value) in the order applied: base overrides, axes, seed keys, budget."""

    @property
    def cell_name(self) -> str:
        """The cell's labels joined (the run name without the seed)."""
        return SEP.join(label for _, label in self.cell) or "base"

    @property
    def labels(self) -> dict[str, str]:
        """Axis name -> label."""
        return dict(self.cell)

    def override_args(self) -> list[str]:
        """The overrides as `key=value` strings for `load_config` / `vla-rl train` (values in JSON, which YAML reads)."""
        return [f"{key}={json.dumps(value)}" for key, value in self.overrides]


def run_name(cell: tuple[tuple[str, str], ...], seed: int) -> str:
    """`ppo__cnn__seed0`: the cell's labels in axis order, then the seed."""
    return SEP.join([*(label for _, label in cell), f"seed{seed}"])


def expand_grid(sweep: SweepConfig) -> list[RunSpec]:
    """Every (cell, seed) of the sweep, in a stable order; refuses two runs with the same folder name."""
    axes = [[(axis.name, label, bundle) for label, bundle in axis.overrides()] for axis in sweep.grid]
    runs: list[RunSpec] = []
    for combo in itertools.product(*axes):
        cell = tuple((name, label) for name, label, _ in combo)
        for seed in sweep.seeds:
            overrides: dict[str, Any] = dict(sweep.overrides)
            for _, _, bundle in combo:
                overrides.update(bundle)
            overrides.update({key: seed for key in sweep.seed_keys})
            overrides.update(sweep.budget.overrides())
            runs.append(RunSpec(name=run_name(cell, seed), cell=cell, seed=seed, overrides=tuple(overrides.items())))
    names = [r.name for r in runs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"the grid names several runs {repeated}; labels must differ once joined with {SEP!r}")
    return runs


def cells(runs: list[RunSpec]) -> dict[str, list[RunSpec]]:
    """Runs grouped by cell (all seeds of one cell together), in grid order."""
    out: dict[str, list[RunSpec]] = {}
    for run in runs:
        out.setdefault(run.cell_name, []).append(run)
    return out


__all__ = ["RunSpec", "expand_grid", "run_name", "cells", "SEP"]
