"""Planning a sweep: each run's resolved config, its config hash, and what is left to do for it.

A run folder is `<sweep output>/runs/<run name>/`. Its state decides the plan:

    done     eval/final.json present and config.yaml (what ran; for a warm-started run sft/config.yaml, the
             config it started with) hashes like the planned config: skip
    resume   same hash, no final record, a checkpoint under checkpoints/: continue from it
    fresh    no folder, or a folder with nothing to resume from: (re)start from scratch
    changed  the folder holds a run of another config (the sweep file or a default changed);
             `--redo-changed` retrains it, `--keep-changed` accepts it as it is when it finished

The hash covers the whole resolved config except where the run is stored and what it resumes from
(`runner.output_dir`, `runner.resume`), so a moved sweep folder stays valid.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vla_rl.checkpoints import LATEST
from vla_rl.config.core import ConfigError, to_dict
from vla_rl.config.loader import load_config, resolve_recipe
from vla_rl.config.schema import Config
from vla_rl.config.sweep import SweepConfig
from vla_rl.sweep.grid import RunSpec, expand_grid, override_arg
from vla_rl.sweep.results import FINAL_EVAL

Status = Literal["done", "resume", "fresh", "changed"]
RUNS = "runs"
"""Sub-folder of the sweep output holding one folder per run."""
RUN_RECIPE = "run.yaml"
"""The resolved config a run's `vla-rl train` subprocess is started with."""


@dataclass
class RunPlan:
    """One run of the sweep and what to do about it."""

    spec: RunSpec
    config: Config
    """The run's resolved config (runner.resume unset)."""
    run_dir: Path
    config_hash: str
    status: Status
    detail: str
    """Why the status (shown in the summary and in errors)."""

    @property
    def checkpoints(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def has_final(self) -> bool:
        """The folder holds a final evaluation (of whatever config ran there)."""
        return (self.run_dir / FINAL_EVAL).is_file()

    def counts_as_done(self, keep_changed: bool = False) -> bool:
        """Done, or (with keep_changed) finished under a config the sweep no longer asks for."""
        return self.status == "done" or (keep_changed and self.status == "changed" and self.has_final)


def config_hash(config: Config) -> str:
    """12 hex digits identifying a run's config, ignoring runner.output_dir and runner.resume."""
    data = to_dict(config)
    data["runner"].pop("output_dir", None)
    data["runner"].pop("resume", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def recipe_path(sweep: SweepConfig, sweep_file: Path | None) -> Path:
    """The base recipe: relative to the sweep file's folder first, then as `vla-rl train` finds recipes."""
    if sweep_file is not None:
        beside = Path(sweep_file).parent / sweep.recipe
        if beside.is_file():
            return beside.resolve()
    return resolve_recipe(sweep.recipe)


def resolve_run(spec: RunSpec, recipe: Path, runs_root: Path, source: str = "sweep") -> Config:
    """The config of one run: the recipe, the run's overrides, its folder; errors name the run."""
    location = [override_arg("runner.output_dir", str(runs_root)), override_arg("runner.name", spec.name)]
    try:
        return load_config(str(recipe), [*spec.override_args(), *location])
    except ConfigError as exc:
        raise ConfigError(f"{source}: run {spec.name} (base {recipe.name} with the sweep's overrides for this cell): "
                          f"{exc}", key=exc.key) from None


def run_status(run_dir: Path, planned_hash: str) -> tuple[Status, str]:
    """What a run folder holds relative to the planned config (see the module docstring)."""
    ran_config = run_dir / "config.yaml"
    if not ran_config.is_file():
        return "fresh", "not started" if not run_dir.exists() else "started, no config written yet: starts over"
    original = run_dir / "sft" / "config.yaml"  # a warm-started run's config.yaml is its RL phase's (pretrained = its
    if original.is_file():                      # SFT policy, warm start off); sft/ keeps the config it was started with
        ran_config = original
    try:
        ran_hash = config_hash(load_config(str(ran_config)))
    except ConfigError as exc:
        return "changed", f"its config.yaml no longer loads ({exc})"
    if ran_hash != planned_hash:
        return "changed", f"it ran config {ran_hash}, the sweep now asks for {planned_hash}"
    if (run_dir / FINAL_EVAL).is_file():
        return "done", "final evaluation present"
    latest = run_dir / "checkpoints" / LATEST
    if latest.is_file():
        return "resume", f"interrupted; resumes from checkpoints/{latest.read_text().strip()}"
    return "fresh", "interrupted before its first checkpoint: starts over"


def plan_sweep(sweep: SweepConfig, output_dir: Path, sweep_file: Path | None = None) -> list[RunPlan]:
    """Resolve and validate every run of the grid (before any starts), then read each folder's state."""
    recipe = recipe_path(sweep, sweep_file)
    runs_root = Path(output_dir).resolve() / RUNS
    plans = []
    for spec in expand_grid(sweep):
        config = resolve_run(spec, recipe, runs_root, str(sweep_file or sweep.name))
        digest = config_hash(config)
        run_dir = runs_root / spec.name
        status, detail = run_status(run_dir, digest)
        plans.append(RunPlan(spec, config, run_dir, digest, status, detail))
    return plans


__all__ = ["RunPlan", "Status", "config_hash", "plan_sweep", "resolve_run", "run_status", "recipe_path", "RUNS",
           "RUN_RECIPE"]
