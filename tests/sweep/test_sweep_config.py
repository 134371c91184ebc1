"""Sweep files are strict: every mistake is a ConfigError that names the file, the key and the fix;
every run's config is validated before any run starts; the shipped sweeps validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweep_helpers import write_sweep
from vla_rl.config.core import ConfigError
from vla_rl.config.loader import CONFIG_DIR
from vla_rl.config.sweep import load_sweep
from vla_rl.sweep.grid import expand_grid
from vla_rl.sweep.plan import plan_sweep


def _error(tmp_path: Path, **fields) -> str:
    path = write_sweep(tmp_path / "bad.yaml", **fields)
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    message = str(info.value)
    assert str(path) in message, message
    return message


def test_unknown_top_level_key(tmp_path):
    message = _error(tmp_path, budgets={"env_steps": 10})
    assert "unknown key budgets" in message and "budget" in message


def test_unknown_budget_and_executor_keys(tmp_path):
    assert "budget.steps" in _error(tmp_path, budget={"steps": 10})
    assert "executor.cpus" in _error(tmp_path, executor={"name": "local", "cpus": 2})


def test_dead_keys_are_refused(tmp_path):
    assert "executor.cpus_per_run apply to executor.name=ray only" in _error(tmp_path, executor={"cpus_per_run": 4})
    assert "plot_by='suite' is not a grid axis" in _error(tmp_path, plot_by="suite")


def test_budget_is_required_and_checked(tmp_path):
    assert "budget" in _error(tmp_path, budget={})
    assert "budget.env_steps=0" in _error(tmp_path, budget={"env_steps": 0})
    path = tmp_path / "nobudget.yaml"
    path.write_text("name: x\noutput_dir: out\n")
    with pytest.raises(ConfigError, match="missing required key budget"):
        load_sweep(path)


def test_axis_needs_exactly_one_of_values_or_bundles(tmp_path):
    both = {"name": "family", "key": "model.family", "values": ["cnn"], "bundles": {"a": {"model.size": "tiny"}}}
    assert "either `key` with `values`, or `bundles`" in _error(tmp_path, grid=[both])
    assert "either `key` with `values`" in _error(tmp_path, grid=[{"name": "family"}])
    assert "no `key`" in _error(tmp_path, grid=[{"name": "family", "values": ["cnn"]}])
    nested = {"name": "family", "key": "model.family", "values": [{"a": 1}]}
    assert "use `bundles`" in _error(tmp_path, grid=[nested])


def test_labels_must_name_folders(tmp_path):
    axis = {"name": "task", "key": "env.task", "values": ["libero_spatial/3"]}
    assert "can not name a run folder" in _error(tmp_path, grid=[axis])
    repeated = {"name": "family", "key": "model.family", "values": ["cnn", "cnn"]}
    assert "repeats a label" in _error(tmp_path, grid=[repeated])


def test_sweep_owned_keys_are_refused(tmp_path):
    assert "runner.name, which the sweep sets itself" in _error(tmp_path, overrides={"runner": {"name": "x"}})
    assert "budgets (iterations" in _error(tmp_path, overrides={"runner.iterations": 3})
    bundle = {"name": "b", "bundles": {"long": {"runner.max_env_steps": 100}}}
    assert "go under budget:" in _error(tmp_path, grid=[bundle])
    seeded = {"name": "s", "key": "runner.seed", "values": [1, 2]}
    assert "a seed key" in _error(tmp_path, grid=[seeded])
    assert "not a grid axis" in _error(tmp_path, grid=[{"name": "seed", "key": "env.seed", "values": [1]}])


def test_two_axes_setting_one_key_are_refused(tmp_path):
    family = {"name": "family", "key": "model.family", "values": ["cnn", "openvla"]}
    other = {"name": "arch", "bundles": {"oft": {"model": {"family": "openvla_oft", "action_chunk": 4}}}}
    message = _error(tmp_path, grid=[family, other])
    assert "model.family" in message and "Merge them into one axis" in message


def test_malformed_yaml_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\ngrid: [\n  - oops: [\n")
    with pytest.raises(ConfigError, match=r"broken.yaml:\d+:\d+: malformed YAML"):
        load_sweep(path)


def test_invalid_cell_is_refused_before_anything_runs(tmp_path):
    # GRPO without fixed-length episodes: the run's own config check fails at plan time, naming the run.
    bad = {"name": "algorithm", "bundles": {"grpo": {"algorithm": {"name": "grpo", "advantage": "grpo",
                                                                   "group_size": 2}}}}
    path = write_sweep(tmp_path / "cell.yaml", grid=[bad])
    sweep = load_sweep(path)
    with pytest.raises(ConfigError) as info:
        plan_sweep(sweep, tmp_path / "out", path)
    message = str(info.value)
    assert "run grpo__seed0" in message and "env.auto_reset=false" in message
    assert not (tmp_path / "out").exists(), "planning must not create folders"


def test_unknown_config_key_in_a_bundle_names_the_key(tmp_path):
    bad = {"name": "algorithm", "bundles": {"ppo": {"algorithm.clip": 0.1}}}
    path = write_sweep(tmp_path / "key.yaml", grid=[bad])
    with pytest.raises(ConfigError, match="algorithm.clip"):
        plan_sweep(load_sweep(path), tmp_path / "out", path)


@pytest.mark.parametrize("name", ["example_cpu", "full_gpu"])
def test_shipped_sweeps_validate_every_run(name, tmp_path):
    path = CONFIG_DIR / "sweeps" / f"{name}.yaml"
    sweep = load_sweep(path)
    plans = plan_sweep(sweep, tmp_path / name, path)
    assert len(plans) == len(expand_grid(sweep)) >= 8
    assert all(p.status == "fresh" for p in plans)
    assert all(p.config.runner.save_every > 0 for p in plans), "shipped sweeps must be resumable from checkpoints"
    hashes = {p.config_hash for p in plans}
    assert len(hashes) == len(plans), "every run of a shipped sweep must differ in config"


def test_cli_dry_run_and_config_errors(tmp_path, sweep_file, capsys):
    from vla_rl.cli.sweep import main

    assert main([str(sweep_file), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "ppo__seed0" in out and "grpo__seed0" in out and "fresh" in out
    assert not (tmp_path / "out").exists(), "a dry run must not create the sweep folder"
    bad = write_sweep(tmp_path / "bad.yaml", seeds=[])
    assert main([str(bad), "--dry-run"]) == 2
    assert "seeds must list at least one seed" in capsys.readouterr().err
