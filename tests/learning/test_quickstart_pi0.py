"""configs/quickstart_pi0.yaml: the quickstart with the flow-matching pi0 family keeps the quickstart's task, demos,
algorithm and evaluation; (slow) SFT by flow matching then GRPO, and PPO with the value head on the prefix, run
through the unchanged runner and algorithms on real ManiSkill at toy sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vla_rl.config.loader import load_config
from vla_rl.models.registry import load_policy
from vla_rl.metrics_log import read_metrics

TOY = ["env.num_envs=2", "env.reward_mode=dense", "algorithm.num_minibatches=2", "runner.iterations=2",
       "runner.eval_episodes=2", "runner.video=false", "env.max_episode_steps=20", "rollout.steps_per_iteration=5",
       "model.denoise_steps=3"]
"""Toy sizes; dense rewards, so that two episodes of one group (or one PPO window) always differ in return."""


def test_quickstart_pi0_is_the_quickstart_with_a_flow_policy():
    pi0, cnn = load_config("quickstart_pi0"), load_config("quickstart")
    assert pi0.env == cnn.env and pi0.warmstart == cnn.warmstart and pi0.algorithm == cnn.algorithm
    assert pi0.runner.eval_episodes == cnn.runner.eval_episodes == 128
    assert pi0.runner.iterations == 50  # as measured; the CNN's iterations are cheaper and it runs more
    assert pi0.model.family == "pi0" and pi0.model.noise_method == "flow_sde"
    # the policy calls of one episode cover its env steps (the last chunk stops at the time limit)
    calls, chunk = pi0.rollout.steps_per_iteration, pi0.model.action_chunk
    assert (calls - 1) * chunk < pi0.env.max_episode_steps <= calls * chunk


def _weights(policy_dir) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in load_policy(str(policy_dir)).state_dict().items()}


def _train_rows(run) -> list[dict]:
    rows = [r for r in read_metrics(run / "logs") if "train/loss" in r]
    assert [r["iteration"] for r in rows] == [1, 2]
    return rows


@pytest.mark.slow
def test_flow_matching_sft_then_grpo(tmp_path):
    from vla_rl.cli.main import main

    args = [*TOY, "algorithm.group_size=2", "warmstart.demos=2", "warmstart.demo_envs=2", "warmstart.sft_steps=10", "warmstart.eval_loss_every=5",
            "runner.name=pi0", f"runner.output_dir={tmp_path}"]
    assert main(["train", "quickstart_pi0", *args, "--no-progress"]) == 0
    run = tmp_path / "pi0"
    sft = [r for r in read_metrics(run / "sft" / "logs") if "sft/flow_mse" in r]
    assert len(sft) == 10 and all(np.isfinite(r["sft/loss"]) for r in sft)
    for row in _train_rows(run):
        for key in ("train/loss", "train/entropy", "train/approx_kl", "train/ref_kl"):
            assert np.isfinite(row[key]), key
    assert json.loads((run / "eval" / "comparison.json").read_text())["n"] == 2
    before, after = _weights(run / "sft" / "policy"), _weights(run / "checkpoints" / "iter-000002" / "policy")
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert any("gemma_expert" in k for k in moved) and any("action_out_proj" in k for k in moved)


@pytest.mark.slow
def test_ppo_trains_the_value_head_on_the_prefix(tmp_path):
    from vla_rl.cli.main import main

    ppo = ["algorithm.name=ppo", "algorithm.advantage=gae", "algorithm.clip_ratio_high=null", "algorithm.loss_agg=token_mean",
           "env.auto_reset=true", "model.value_head=true", "warmstart.enabled=false",
           "runner.save_every=1", "runner.name=ppo", f"runner.output_dir={tmp_path}"]
    assert main(["train", "quickstart_pi0", *TOY, *ppo, "--no-progress"]) == 0
    run = tmp_path / "ppo"
    rows = _train_rows(run)
    assert all(np.isfinite(r["train/vf_loss"]) and r["train/vf_loss"] > 0 for r in rows)
    first, last = _weights(run / "checkpoints" / "iter-000001" / "policy"), _weights(run / "checkpoints" / "iter-000002" / "policy")
    assert not torch.equal(first["net.value_head.fc1.weight"], last["net.value_head.fc1.weight"])
