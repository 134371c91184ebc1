"""The warm start as `vla-rl train` runs it: config checks, and (slow) demos -> SFT -> RL end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vla_rl.config.core import ConfigError
from vla_rl.config.loader import load_config
from vla_rl.progress import INTERVAL_ENV

REPO = Path(__file__).resolve().parents[2]


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
    """`vla-rl train > log 2>&1` as a user runs it, bars on: every bar (demos, SFT with its per-step
    postfix, rollout, train, eval) is a few plain lines in the pipe, and the summary follows."""
    args = ["env.task=PushCube-v1", "env.num_envs=2", "env.image_size=64", "model.family=cnn", "model.image_size=null",
            "warmstart.enabled=true", "warmstart.demos=3", "warmstart.demo_envs=2", "warmstart.sft_steps=200",
            "warmstart.eval_loss_every=100", "runner.iterations=1", "rollout.steps_per_iteration=4",
            "runner.eval_episodes=2", "runner.video=false", "runner.name=ws", f"runner.output_dir={tmp_path}"]
    env = {**os.environ, INTERVAL_ENV: "1", "PYTHONPATH": str(REPO)}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "vla_rl.cli.main", "train", "quickstart_ppo", *args], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    seconds = time.monotonic() - start
    log = proc.stdout.decode()
    assert proc.returncode == 0, log[-3000:]
    assert "\r" not in log and "\x1b" not in log, "a redrawn bar reached the pipe"
    lines = log.splitlines()
    sft = [line for line in lines if line.startswith("sft: ")]
    assert sft and sft[-1].startswith("sft: 200/200 step (100%)") and "nll=" in sft[-1], sft
    assert len(sft) <= seconds + 1, "more than one SFT line per second"
    assert any(line.startswith("train: 1/1 it (100%)") for line in lines), lines
    assert len(lines) < 200 and len(log) < 30_000, log
    assert "success" in log.lower() and "McNemar" in log, log[-2000:]
    run = tmp_path / "ws"
    assert (run / "demos" / "index.json").is_file() and (run / "sft" / "policy" / "config.json").is_file()
    comparison = json.loads((run / "eval" / "comparison.json").read_text())
    assert comparison["n"] == 2 and 0 <= comparison["p_value"] <= 1
    assert (run / "eval" / "initial" / "manifest.json").is_file() and (run / "eval" / "learning_curve.png").is_file()
    rl_config = (run / "config.yaml").read_text()
    assert str(run / "sft" / "policy") in rl_config  # RL started from the SFT policy
