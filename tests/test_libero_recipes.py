"""The LIBERO recipes (configs/libero/): every one loads, names its source and plans on this CPU; the
OFT + GRPO smoke recipe (libero/smoke_grpo_oft) trains one iteration at 2 envs on the real simulator (slow tier)."""

from __future__ import annotations

from pathlib import Path

import pytest

from placement.registry import plan_for
from vla_rl.config.loader import CONFIG_DIR, load_config

SUITES = ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90", "libero_130")
RECIPES = [f"{suite}_{kind}" for suite in SUITES for kind in ("grpo_oft", "ppo_openvla")]


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_loads_names_its_source_and_plans(name):
    path = CONFIG_DIR / "libero" / f"{name}.yaml"
    assert "Source:" in path.read_text(), f"{path} must name the public config it follows"
    config = load_config(f"libero/{name}")
    suite = name.rsplit("_", 2)[0]
    assert (config.env.backend, config.env.task, config.env.image_protocol) == ("libero", suite, "openvla")
    assert config.model.pretrained.startswith("./models/") and not Path(config.model.pretrained).is_absolute()
    if name.endswith("grpo_oft"):
        assert (config.model.family, config.model.action_chunk, config.algorithm.group_size) == ("openvla_oft", 8, 8)
        assert config.rollout.steps_per_iteration * config.model.action_chunk == config.env.max_episode_steps
    else:
        assert config.model.family == "openvla" and config.algorithm.uses_critic and config.env.auto_reset
    plan = plan_for(config)
    assert plan.backend == "local" and plan.env.workers == config.env.num_envs  # LIBERO: a process per env


def test_smoke_recipe_is_the_spatial_recipe_on_one_task_with_a_tiny_policy():
    smoke, full = load_config("libero/smoke_grpo_oft"), load_config("libero/libero_spatial_grpo_oft")
    assert (smoke.env.task, smoke.env.num_envs, smoke.runner.iterations) == ("libero_spatial/0", 8, 2)
    assert (smoke.model.family, smoke.model.size, smoke.model.pretrained) == ("openvla_oft", "tiny", None)
    assert smoke.rollout.steps_per_iteration * smoke.model.action_chunk == smoke.env.max_episode_steps == 128
    assert smoke.algorithm == full.algorithm and smoke.env.num_envs == full.algorithm.group_size  # one group
    assert (smoke.env.image_protocol, smoke.env.image_size, smoke.env.cameras) == ("openvla", 224, ("main",))
    assert plan_for(smoke).env.workers == 8


@pytest.mark.slow
@pytest.mark.libero
def test_smoke_variant_trains_one_iteration_on_libero(tmp_path):
    from vla_rl.runner.loop import Runner
    from vla_rl.metrics_log import read_metrics

    # The recipe's two iterations of one group of 8 take minutes: here 2 envs, one iteration, 8-step episodes.
    tiny = ["env.num_envs=2", "algorithm.group_size=2", "env.max_episode_steps=8", "rollout.steps_per_iteration=1",
            "runner.iterations=1", "runner.eval_episodes=2", "env.image_size=64", "env.image_protocol=raw"]
    config = load_config("libero/smoke_grpo_oft", [*tiny, f"runner.output_dir={tmp_path}"])
    runner = Runner(config, progress=False)
    try:
        summary = runner.run()
    finally:
        runner.close()
    rows = [r for r in read_metrics(summary.run_dir / "logs") if "train/loss" in r]
    assert [r["iteration"] for r in rows] == [1] and rows[0]["rollout/total_env_steps"] == 2 * 8
    assert summary.checkpoint is not None and summary.final_eval is not None
    assert len(summary.final_eval.successes) == 2
