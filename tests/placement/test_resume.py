"""Exact resume (default tier: a toy PPO run on real ManiSkill3): train 4 iterations saving at 2, vs resume from that checkpoint and train 2 more:
the same metrics for iterations 3-4 (env statistics exactly, losses within float tolerance).

The checkpoint carries weights, optimizer, RNG streams (python, numpy, torch, the runner's
generator), the reset cursor, the iteration and the episodes in flight (a replay log, see
placement/replay_env.py); the KL reference is the initial policy, not the resumed one.
"""

from __future__ import annotations

import math

import pytest
import torch

from vla_rl.config.loader import load_config
from vla_rl.runner.loop import Runner
from vla_rl.metrics_log import read_metrics

TINY = ["env.num_envs=2", "rollout.steps_per_iteration=4", "env.max_episode_steps=5", "runner.eval_initial=false",
        "runner.video=false", "runner.eval_episodes=2", "algorithm.num_minibatches=2", "placement.device=cpu",
        "algorithm.kl_coef=0.1"]


def _train(tmp_path, name: str, *extra: str):
    config = load_config("quickstart_ppo", [*TINY, f"runner.output_dir={tmp_path}", f"runner.name={name}", *extra])
    runner = Runner(config, progress=False)
    try:
        initial_ref = {k: v.clone() for k, v in runner.ref_policy.state_dict().items()}
        summary = runner.run()
    finally:
        runner.close()
    return summary, initial_ref


def _rows(run_dir):
    return {(r["iteration"], "train/loss" in r): r for r in read_metrics(run_dir / "logs")}


def test_resume_continues_exactly(tmp_path):
    full, ref_full = _train(tmp_path, "full", "runner.iterations=4", "runner.save_every=2")
    checkpoint = full.run_dir / "checkpoints" / "iter-000002"
    resumed, ref_resumed = _train(tmp_path, "resumed", "runner.iterations=4", f"runner.resume={checkpoint}")
    for key, value in ref_full.items():  # the KL reference is the initial policy in both runs
        torch.testing.assert_close(ref_resumed[key], value, rtol=0, atol=0)
    a, b = _rows(full.run_dir), _rows(resumed.run_dir)
    compared = 0
    for key in [(3, True), (4, True), (4, False)]:
        ra, rb = a[key], b[key]
        for name, value in ra.items():
            if name.startswith("time/") or name == "rollout/env_steps_per_s":
                continue
            if name.startswith(("env/", "eval/", "rollout/")):
                assert rb[name] == value, (key, name)
            else:
                assert math.isclose(rb[name], value, rel_tol=1e-4, abs_tol=1e-6), (key, name, value, rb[name])
            compared += 1
    assert compared > 40
    assert resumed.env_steps == full.env_steps
