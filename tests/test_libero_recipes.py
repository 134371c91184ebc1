"""The LIBERO recipes (configs/libero/): every one loads, names its source and plans on this CPU; the
tiny smoke variant of the OFT + GRPO recipe trains one iteration on the real simulator (slow tier)."""

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


@pytest.mark.slow
@pytest.mark.libero
def test_smoke_variant_trains_one_iteration_on_libero(tmp_path):
    from vla_rl.runner.loop import Runner
    from vla_rl.metrics_log import read_metrics

    config = load_config("libero/smoke_grpo_oft", [f"runner.output_dir={tmp_path}"])
    assert (config.env.num_envs, config.runner.iterations) == (2, 1)
    runner = Runner(config, progress=False)
    try:
        summary = runner.run()
    finally:
        runner.close()
    rows = [r for r in read_metrics(summary.run_dir / "logs") if "train/loss" in r]
    assert [r["iteration"] for r in rows] == [1] and rows[0]["rollout/total_env_steps"] == 2 * 8
    assert summary.checkpoint is not None and summary.final_eval is not None
    assert len(summary.final_eval.successes) == 2
