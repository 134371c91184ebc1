"""Grid expansion: every (cell, seed) once, stable names and order, overrides applied in order and
understood by the config loader exactly as written; config hashes that ignore only the run's location."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from sweep_helpers import ALGORITHMS, write_sweep

from vla_rl.config.core import ConfigError
from vla_rl.config.loader import dump_config, load_config, parse_override
from vla_rl.config.sweep import UNBOUNDED_ITERATIONS, load_sweep
from vla_rl.sweep.grid import SEP, cells, expand_grid, override_arg
from vla_rl.sweep.plan import config_hash, plan_sweep

FAMILY = {"name": "family", "key": "model.family", "values": ["cnn", "openvla"]}


def test_every_cell_and_seed_once_in_stable_order(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path / "s.yaml", grid=[ALGORITHMS, FAMILY], seeds=[3, 1]))
    runs = expand_grid(sweep)
    expected = [(a, f, s) for a, f in itertools.product(["ppo", "grpo"], ["cnn", "openvla"]) for s in [3, 1]]
    assert [(r.labels["algorithm"], r.labels["family"], r.seed) for r in runs] == expected
    assert [r.name for r in runs] == [SEP.join([a, f, f"seed{s}"]) for a, f, s in expected]
    assert [r.name for r in expand_grid(load_sweep(tmp_path / "s.yaml"))] == [r.name for r in runs]
    assert list(cells(runs)) == ["ppo__cnn", "ppo__openvla", "grpo__cnn", "grpo__openvla"]


def test_names_do_not_move_when_the_grid_grows(tmp_path):
    small = expand_grid(load_sweep(write_sweep(tmp_path / "a.yaml", grid=[FAMILY], seeds=[0])))
    bigger_axis = {**FAMILY, "values": ["cnn", "openvla", "openvla_oft"]}
    big = expand_grid(load_sweep(write_sweep(tmp_path / "b.yaml", grid=[bigger_axis], seeds=[0, 1])))
    assert {r.name for r in small} <= {r.name for r in big}
    by_name = {r.name: r for r in big}
    for run in small:
        assert by_name[run.name].overrides == run.overrides


def test_overrides_order_base_then_axes_then_seed_and_budget(tmp_path):
    path = write_sweep(tmp_path / "s.yaml", overrides={"model.family": "openvla", "env.num_envs": 2},
                       grid=[FAMILY], seeds=[7], seed_keys=["runner.seed", "env.seed"],
                       budget={"env_steps": 123, "train_seconds": 4.5})
    run = expand_grid(load_sweep(path))[0]
    overrides = dict(run.overrides)
    assert overrides["model.family"] == "cnn"  # the axis wins over the base
    assert overrides["runner.seed"] == overrides["env.seed"] == 7
    assert overrides["runner.max_env_steps"] == 123 and overrides["runner.max_train_seconds"] == 4.5
    assert overrides["runner.iterations"] == UNBOUNDED_ITERATIONS


def test_override_values_reach_the_config_unchanged(tmp_path):
    axis = {"name": "variant", "bundles": {"a": {"algorithm.lr": 1e-5, "algorithm.target_kl": None,
                                                 "env.cameras": ["main"], "runner.video": True,
                                                 "model.pretrained": "/ckpt/x:y #z"}}}
    path = write_sweep(tmp_path / "s.yaml", grid=[axis], budget={"iterations": 2})
    plan = plan_sweep(load_sweep(path), tmp_path / "out", path)[0]
    cfg = plan.config
    assert cfg.algorithm.lr == 1e-5 and cfg.algorithm.target_kl is None
    assert cfg.env.cameras == ("main",) and cfg.runner.video is True
    assert cfg.model.pretrained == "/ckpt/x:y #z"
    assert cfg.runner.iterations == 2 and cfg.runner.max_env_steps is None
    assert cfg.runner.name == plan.spec.name and cfg.runner.output_dir == str((tmp_path / "out" / "runs").resolve())


@pytest.mark.parametrize("value", [1e-5, 3e-4, 0.1, 7, True, None, "1", "yes", "null", "a=b", "x: y", "#z", "",
                                   "PickCube-v1", "wörter", [1, "2", None], {"a": [1.5e-8]}])
def test_override_arg_reads_back_exactly(value):
    parts, parsed = parse_override(override_arg("a.b", value))
    assert parts == ["a", "b"] and parsed == value and type(parsed) is type(value)


def test_label_references_couple_axes(tmp_path):
    task = {"name": "task", "key": "env.task", "values": ["PushCube-v1", "PickCube-v1"]}
    family = {"name": "family", "bundles": {"cnn": {"model.family": "cnn", "model.pretrained": "/ckpt/${family}-${task}-s${seed}"}}}
    runs = expand_grid(load_sweep(write_sweep(tmp_path / "s.yaml", grid=[task, family], seeds=[0, 1])))
    assert [dict(r.overrides)["model.pretrained"] for r in runs] == [
        f"/ckpt/cnn-{t}-s{s}" for t in ["PushCube-v1", "PickCube-v1"] for s in [0, 1]]
    bad = {"name": "family", "bundles": {"cnn": {"model.pretrained": "/ckpt/${suite}"}}}
    with pytest.raises(ConfigError, match=r"\['suite'\].*may name the grid axes"):
        expand_grid(load_sweep(write_sweep(tmp_path / "bad.yaml", grid=[bad])))


def test_colliding_names_are_refused(tmp_path):
    a = {"name": "a", "key": "env.task", "values": ["x__y", "x"]}
    b = {"name": "b", "key": "model.family", "values": ["z", "y__z"]}
    with pytest.raises(ConfigError, match="x__y__z"):
        expand_grid(load_sweep(write_sweep(tmp_path / "s.yaml", grid=[a, b])))


def test_config_hash_survives_the_round_trip_and_ignores_only_location(tmp_path, sweep_file):
    plan = plan_sweep(load_sweep(sweep_file), tmp_path / "out", sweep_file)[0]
    dumped = tmp_path / "run.yaml"
    dumped.write_text(dump_config(plan.config))
    assert config_hash(load_config(str(dumped))) == plan.config_hash
    moved = replace(plan.config, runner=replace(plan.config.runner, output_dir="/elsewhere", resume="/x/checkpoints"))
    assert config_hash(moved) == plan.config_hash
    for changed in (replace(plan.config.runner, seed=plan.config.runner.seed + 1),
                    replace(plan.config.runner, name="other"),
                    replace(plan.config.runner, max_env_steps=(plan.config.runner.max_env_steps or 0) + 1)):
        assert config_hash(replace(plan.config, runner=changed)) != plan.config_hash
    assert config_hash(replace(plan.config, env=replace(plan.config.env, num_envs=4))) != plan.config_hash
