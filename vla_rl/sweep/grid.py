"""Grid expansion: a `SweepConfig` becomes the list of runs it asks for, each with a stable name.

Pure functions over the sweep config (no file system, no config loading): the same sweep file
always gives the same runs, names and override lists, in the same order (axes in file order, the
last axis varying fastest, seeds innermost). A string value may name the run's labels as
`${axis}` or `${seed}` (filled in here), to couple axes such as a checkpoint per family and task.
"""

from __future__ import annotations

import itertools
import string
from dataclasses import dataclass
from typing import Any

import yaml

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
        """The overrides as `key=value` strings for `load_config` / `vla-rl train`."""
        return [override_arg(key, value) for key, value in self.overrides]


def override_arg(key: str, value: Any) -> str:
    """`key=value` with the value written in YAML, so the loader reads back exactly `value`
    (JSON would not do: YAML reads JSON's `1e-05` as a string)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=2**31, allow_unicode=True)
    lines = text.splitlines()
    if lines and lines[-1] == "...":  # the end-of-document marker YAML adds after a plain scalar
        lines = lines[:-1]
    return key + "=" + "\n".join(lines)


def run_name(cell: tuple[tuple[str, str], ...], seed: int) -> str:
    """`ppo__cnn__seed0`: the cell's labels in axis order, then the seed."""
    return SEP.join([*(label for _, label in cell), f"seed{seed}"])


def substitute_labels(value: Any, labels: dict[str, str], key: str) -> Any:
    """A string value with `${axis}` (or `${seed}`) references filled from the run's labels; other values unchanged.

    This couples two axes without a combined one, e.g. `model.pretrained: /ckpt/${family}-sft-${task}`.
    """
    if not isinstance(value, str) or "$" not in value:
        return value
    template = string.Template(value)
    unknown = [name for name in template.get_identifiers() if name not in labels]
    if unknown or not template.is_valid():
        raise ConfigError(f"override {key}={value!r} references {unknown or 'a malformed ${...}'}; "
                          f"it may name the grid axes or seed: {sorted(labels)} (write $$ for a literal $)")
    return template.substitute(labels)


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
            labels = {**dict(cell), "seed": str(seed)}
            overrides = {key: substitute_labels(value, labels, key) for key, value in overrides.items()}
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


__all__ = ["RunSpec", "expand_grid", "run_name", "cells", "override_arg", "substitute_labels", "SEP"]
