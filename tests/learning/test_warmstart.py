"""The warm start as `vla-rl train` runs it: config checks, and (slow) demos -> SFT -> RL end to end."""

from __future__ import annotations

import json

import pytest

from vla_rl.config.core import ConfigError
from vla_rl.config.loader import load_config


def test_warmstart_section_is_validated_with_fixes_in_the_message():
    config = load_config("quickstart_ppo", ["warmstart.enabled=true", "warmstart.demos=8"])
    assert config.warmstart.enabled and config.warmstart.demos == 8
    for override, words in [("warmstart.demos=0", "demos=0 must be >= 1"),
                            ("warmstart.holdout_fraction=1.0", "holdout_fraction=1.0 must be in [0, 1)"),
                            ("warmstart.lr=0", "lr=0.0 must be > 0"),
                            ("warmstart.unknown=1", "unknown key warmstart.unknown")]:
        with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
            load_config("quickstart_ppo", [override])


@pytest.mark.parametrize("recipe", ["quickstart", "quickstart_ppo"])
def test_recipes_load_with_a_warm_start(recipe):
    config = load_config(recipe)
    assert config.warmstart.enabled and config.runner.eval_initial
    assert config.env.image_size == (config.model.image_size or config.env.image_size)


def test_both_recipes_generate_their_demos_in_the_same_env():
    """Demos depend on how many envs generate them; warmstart.demo_envs fixes that number, so the PPO and
    the GRPO quickstart start RL from the same demos and the same SFT policy, whatever their env counts."""
    from vla_rl.sft.warmstart import demo_env_config

    grpo, ppo = load_config("quickstart"), load_config("quickstart_ppo", ["env.num_envs=8"])
    assert ppo.env.num_envs != grpo.env.num_envs and ppo.env.auto_reset != grpo.env.auto_reset
    assert demo_env_config(ppo) == demo_env_config(grpo)
    assert demo_env_config(grpo).num_envs == grpo.warmstart.demo_envs == 8
    assert (ppo.warmstart.demos, ppo.warmstart.sft_steps) == (grpo.warmstart.demos, grpo.warmstart.sft_steps)
    few = demo_env_config(load_config("quickstart_ppo", ["warmstart.demos=3", "env.num_envs=8", "env.num_workers=8"]))
    assert (few.num_envs, few.num_workers, few.auto_reset) == (3, 3, False)  # never more envs than demos
    own = demo_env_config(load_config("quickstart_ppo", ["warmstart.demo_envs=null", "env.num_envs=4"]))
    assert own.num_envs == 4
    with pytest.raises(ConfigError, match="demo_envs=0 must be >= 1"):
        load_config("quickstart_ppo", ["warmstart.demo_envs=0"])


@pytest.mark.slow
def test_train_with_warm_start_reports_sft_and_rl_on_the_same_seeds(tmp_path):
    from vla_rl.cli.main import main

    args = ["env.task=PushCube-v1", "env.num_envs=2", "env.image_size=64", "model.family=cnn", "model.image_size=null",
            "warmstart.enabled=true", "warmstart.demos=3", "warmstart.demo_envs=2", "warmstart.sft_steps=20", "warmstart.eval_loss_every=10",
            "runner.iterations=1", "rollout.steps_per_iteration=4", "runner.eval_episodes=2", "runner.video=false",
            "runner.name=ws", f"runner.output_dir={tmp_path}"]
    assert main(["train", "quickstart_ppo", *args, "--no-progress"]) == 0
    run = tmp_path / "ws"
    assert (run / "demos" / "index.json").is_file() and (run / "sft" / "policy" / "config.json").is_file()
    comparison = json.loads((run / "eval" / "comparison.json").read_text())
    assert comparison["n"] == 2 and 0 <= comparison["p_value"] <= 1
    assert (run / "eval" / "initial" / "manifest.json").is_file() and (run / "eval" / "learning_curve.png").is_file()
    rl_config = (run / "config.yaml").read_text()
    assert str(run / "sft" / "policy") in rl_config  # RL started from the SFT policy
