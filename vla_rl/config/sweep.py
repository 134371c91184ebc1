"""The schema of a sweep file (`vla-rl sweep SWEEP.yaml`): a base recipe, a grid of overrides, seeds,
a budget per run, a success threshold and an output folder.

A sweep file is strict like a recipe: an unknown key, a value of the wrong type or an axis that
sets a key the sweep owns (run names, output folders, budgets, seeds) is a `ConfigError` naming
the file and the fix. `load_sweep(path)` reads and validates one; expanding the grid into runs is
`vla_rl.sweep.grid`'s job.

    name: ppo_vs_grpo
    recipe: quickstart                      # base recipe (file, or name under configs/)
    overrides: {env.image_size: 64}         # applied to every run
    grid:
      - name: algorithm                     # bundles: several keys changed together
        bundles:
          ppo: {algorithm.name: ppo, algorithm.advantage: gae, env.auto_reset: true}
          grpo: {algorithm: {name: grpo, advantage: grpo, group_size: 2}, env.auto_reset: false}
      - name: family                        # values: one key, one value per cell
        key: model.family
        values: [openvla, cnn]
    seeds: [0, 1]
    budget: {env_steps: 2000}
    success_threshold: 0.5
    output_dir: runs/sweeps/ppo_vs_grpo
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from vla_rl.config.core import ConfigError, check, from_dict

LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
"""What a cell label (and so a run-folder name part) may contain."""

OWNED_KEYS = ("runner.name", "runner.output_dir", "runner.resume", "runner.iterations", "runner.max_env_steps",
              "runner.max_train_seconds")
"""Config keys the sweep sets itself; overrides and axes must not."""


def flatten_keys(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"algorithm": {"name": "grpo"}, "env.auto_reset": False} -> {"algorithm.name": "grpo", "env.auto_reset": False}.

    A mapping value becomes dotted keys; any other value (lists included) is kept as it is.
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override key {key!r} is not a dotted config key such as algorithm.clip_ratio")
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            if not value:
                raise ConfigError(f"override {dotted} is an empty mapping; give it keys or remove it")
            out.update(flatten_keys(value, f"{dotted}."))
        else:
            out[dotted] = value
    return out


def value_label(value: Any) -> str:
    """The label of a plain axis value in run names and tables: `0.0003`, `true`, `PickCube-v1`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


@dataclass
class AxisConfig:
    """One dimension of the grid: either one config key with a list of values, or named bundles."""

    name: str
    """Axis name: a column of the comparison table (e.g. algorithm, family, task)."""
    key: str | None = None
    """Dotted config key the `values` set (e.g. model.family); null when the axis uses `bundles`."""
    values: list[Any] = field(default_factory=list)
    """Values of `key`, one cell per value (labelled by the value itself)."""
    bundles: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Label -> overrides changed together (dotted keys, or nested mappings of sections)."""

    def __post_init__(self) -> None:
        check(bool(LABEL.match(self.name)), f"grid axis name {self.name!r} must be a simple word (letters, digits, ._+-)")
        check(bool(self.values) != bool(self.bundles),
              f"grid axis {self.name!r}: give either `key` with `values`, or `bundles` (label -> overrides), not both or neither")
        if self.values:
            check(self.key is not None, f"grid axis {self.name!r} lists values but no `key`; add the config key they set, "
                  "e.g. key: model.family")
            check(all(not isinstance(v, (dict, list)) for v in self.values),
                  f"grid axis {self.name!r}: values must be plain (string, number, bool); use `bundles` to change several keys")
        else:
            check(self.key is None, f"grid axis {self.name!r}: `key` applies to `values` only; bundles name their keys")
        for label in self.labels:
            check(bool(LABEL.match(label)), f"grid axis {self.name!r}: label {label!r} can not name a run folder; "
                  "use letters, digits and ._+- (bundle labels are the mapping's keys)")
        check(len(set(self.labels)) == len(self.labels), f"grid axis {self.name!r} repeats a label: {self.labels}")
        for label, bundle in self.bundles.items():
            check(bool(bundle), f"grid axis {self.name!r}: bundle {label!r} is empty; give it the overrides it sets")
            self.bundles[label] = flatten_keys(bundle)

    @property
    def labels(self) -> list[str]:
        """Cell labels in grid order."""
        return [value_label(v) for v in self.values] if self.values else list(self.bundles)

    def overrides(self) -> list[tuple[str, dict[str, Any]]]:
        """(label, {dotted key: value}) for every cell of this axis, in grid order."""
        if self.values:
            return [(value_label(v), {self.key: v}) for v in self.values]
        return list(self.bundles.items())


@dataclass
class BudgetConfig:
    """What each run may spend, so that every cell is compared at equal cost."""

    env_steps: int | None = None
    """Stop training after this many env steps (runner.max_env_steps); overshoot is at most one iteration."""
    train_seconds: float | None = None
    """Stop training after this many seconds after setup (runner.max_train_seconds)."""
    iterations: int | None = None
    """Cap on training iterations (runner.iterations); null: unbounded, the other budgets decide."""

    def __post_init__(self) -> None:
        check(self.env_steps is not None or self.train_seconds is not None or self.iterations is not None,
              "budget needs env_steps, train_seconds or iterations (equal cost per run is the point of a sweep)")
        check(self.env_steps is None or self.env_steps >= 1, f"budget.env_steps={self.env_steps} must be >= 1")
        check(self.train_seconds is None or self.train_seconds > 0, f"budget.train_seconds={self.train_seconds} must be > 0")
        check(self.iterations is None or self.iterations >= 1, f"budget.iterations={self.iterations} must be >= 1")

    def overrides(self) -> dict[str, Any]:
        """The runner keys this budget sets."""
        return {"runner.iterations": self.iterations if self.iterations is not None else UNBOUNDED_ITERATIONS,
                "runner.max_env_steps": self.env_steps, "runner.max_train_seconds": self.train_seconds}


UNBOUNDED_ITERATIONS = 1_000_000
"""runner.iterations when the budget is env steps or seconds only."""


@dataclass
class ExecutorConfig:
    """Where runs execute: one after another here, or concurrently as tasks on a Ray cluster."""

    name: Literal["local", "ray"] = "local"
    """"local": one `vla-rl train` subprocess after another; "ray": concurrent Ray tasks (shared filesystem)."""
    ray_address: str | None = None
    """Ray cluster to join ("auto": the running one); null starts a private Ray on this machine."""
    cpus_per_run: float = 2.0
    """Ray resources reserved by each run's task (its env workers and learner share them)."""
    gpus_per_run: float = 0.0
    """GPUs reserved by each run's task (fractions share a GPU)."""
    max_concurrent: int | None = None
    """Most runs in flight at once; null: as many as the cluster's resources admit."""

    def __post_init__(self) -> None:
        check(self.cpus_per_run > 0, f"executor.cpus_per_run={self.cpus_per_run} must be > 0")
        check(self.gpus_per_run >= 0, f"executor.gpus_per_run={self.gpus_per_run} must be >= 0")
        check(self.max_concurrent is None or self.max_concurrent >= 1,
              f"executor.max_concurrent={self.max_concurrent} must be null or >= 1")
        if self.name != "ray":
            defaults = {f.name: f.default for f in dataclasses.fields(self)}
            set_here = [n for n in ("ray_address", "cpus_per_run", "gpus_per_run", "max_concurrent")
                        if getattr(self, n) != defaults[n]]
            check(not set_here, f"executor.{', executor.'.join(set_here)} apply to executor.name=ray only; "
                  "remove them or set name: ray")


@dataclass
class SweepConfig:
    """A grid of training runs compared at equal cost."""

    name: str
    """Sweep name (titles of the table and plots)."""
    budget: BudgetConfig
    """What each run may spend."""
    output_dir: str
    """Folder of the sweep: runs/<run>/ per run, table.md, table.csv, plots/."""
    recipe: str = "quickstart"
    """Base recipe: a file (relative to the sweep file or the working directory) or a name under configs/."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Overrides applied to every run before the grid's (dotted keys or nested sections)."""
    grid: list[AxisConfig] = field(default_factory=list)
    """Axes of the grid; every combination of their cells is trained once per seed."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """Seeds; each cell runs once per seed."""
    seed_keys: list[str] = field(default_factory=lambda: ["runner.seed"])
    """Config keys set to the seed (runner.seed seeds weights and sampling; add env.seed for other training episodes)."""
    success_threshold: float = 0.5
    """Evaluation success rate whose first crossing gives the env steps / seconds to threshold."""
    plot_by: str | None = None
    """Grid axis with one figure per value; other axes give the lines. null: the axis named `task` if any, else one figure."""
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    """Local (sequential) or Ray (concurrent) execution."""

    def __post_init__(self) -> None:
        check(bool(LABEL.match(self.name)), f"name {self.name!r} must be a simple word (letters, digits, ._+-)")
        check(bool(self.output_dir), "output_dir must name the sweep's folder, e.g. runs/sweeps/<name>")
        check(bool(self.seeds), "seeds must list at least one seed, e.g. [0, 1]")
        check(len(set(self.seeds)) == len(self.seeds), f"seeds {self.seeds} repeat a seed")
        check(all(s >= 0 for s in self.seeds), f"seeds {self.seeds} must be >= 0")
        check(bool(self.seed_keys), "seed_keys must name at least one config key, e.g. [runner.seed]")
        check(0 < self.success_threshold <= 1, f"success_threshold={self.success_threshold} must be in (0, 1]")
        names = [axis.name for axis in self.grid]
        check(len(set(names)) == len(names), f"grid repeats an axis name: {names}")
        check("seed" not in names, "`seed` is not a grid axis; list seeds under `seeds:`")
        check(self.plot_by is None or self.plot_by in names, f"plot_by={self.plot_by!r} is not a grid axis ({names}); "
              "name one of them, or null for the `task` axis (or a single figure)")
        self.overrides = flatten_keys(self.overrides)
        self._refuse_owned_keys()

    @property
    def figure_axis(self) -> str | None:
        """The axis with one figure per value: plot_by, else an axis named `task`, else none (one figure)."""
        if self.plot_by is not None:
            return self.plot_by
        return "task" if any(axis.name == "task" for axis in self.grid) else None

    def _refuse_owned_keys(self) -> None:
        sources = [("overrides", self.overrides)]
        for axis in self.grid:
            sources += [(f"grid axis {axis.name!r} ({label})", bundle) for label, bundle in axis.overrides()]
        for where, bundle in sources:
            for key in bundle:
                check(key not in OWNED_KEYS, f"{where} sets {key}, which the sweep sets itself; budgets (iterations, env "
                      "steps, seconds) go under budget:, run names and folders follow from the grid and output_dir")
                check(key not in self.seed_keys, f"{where} sets {key}, a seed key; list seeds under seeds:")
        key_axes: dict[str, list[str]] = {}
        for axis in self.grid:
            for key in {k for _, bundle in axis.overrides() for k in bundle}:
                key_axes.setdefault(key, []).append(axis.name)
        clashes = {k: v for k, v in key_axes.items() if len(v) > 1}
        check(not clashes, f"several grid axes set the same key ({clashes}); a cell would depend on axis order. "
              "Merge them into one axis of bundles")


def load_sweep(path: str | Path) -> SweepConfig:
    """Read and validate a sweep file; every error names the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read sweep file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: malformed YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a sweep file must be a mapping (name, recipe, grid, budget, output_dir, ...)")
    return from_dict(SweepConfig, data, source=str(path))


__all__ = ["AxisConfig", "BudgetConfig", "ExecutorConfig", "SweepConfig", "load_sweep", "flatten_keys", "value_label",
           "OWNED_KEYS", "UNBOUNDED_ITERATIONS"]
