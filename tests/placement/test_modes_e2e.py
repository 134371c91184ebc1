"""Each placement mode trains two real iterations end to end on this machine (the hybrid one in the default tier,
the others slow).

Real ManiSkill3 PickCube from RGB, a tiny OpenVLA-style policy, PPO; tiny sizes. On 2 cores the
disaggregated plan needs 3 disjoint device sets, so it runs with 2 CPU slots per core
(placement.cpu_slots_per_core=2): env on slots 0-1 (core 0), rollout on slot 2, actor on slot 3.
"""

from __future__ import annotations

import numpy as np
import pytest

from placement.weight_sync import state_checksum
from vla_rl.config.loader import load_config
from vla_rl.runner.loop import Runner
from vla_rl.metrics_log import read_metrics

TINY = ["runner.iterations=2", "rollout.steps_per_iteration=3", "env.num_envs=4", "env.max_episode_steps=4",
        "runner.eval_episodes=2", "runner.eval_initial=false", "runner.video=false", "algorithm.num_minibatches=2",
        "placement.device=cpu"]

MODES = {
    "collocated": [],
    "hybrid": ["placement.env=0", "placement.rollout=1", "placement.pipeline_stages=2"],
    "pinned-hybrid": ["placement.env=0", "placement.rollout=1", "placement.pipeline_stages=2", "placement.pin_cpus=true"],
    "disaggregated": ["placement.cpu_slots_per_core=2", "placement.env=0-1", "placement.rollout=2",
                      "placement.actor=3", "placement.pipeline_stages=2"],
    "grpo-hybrid": ["placement.env=0", "placement.rollout=1", "placement.pipeline_stages=2", "algorithm.name=grpo",
                    "algorithm.advantage=grpo", "algorithm.group_size=2", "env.auto_reset=false",
                    "rollout.steps_per_iteration=4"],
}


DEFAULT_TIER = ("hybrid",)
"""A non-collocated plan (env and rollout apart, two pipeline stages) that every default test run trains."""


@pytest.mark.parametrize("mode", [pytest.param(m, marks=() if m in DEFAULT_TIER else pytest.mark.slow) for m in MODES])
def test_mode_trains_two_iterations(mode, tmp_path):
    config = load_config("quickstart_ppo", [*TINY, *MODES[mode], f"runner.output_dir={tmp_path}", f"runner.name={mode}"])
    runner = Runner(config, progress=False)
    try:
        assert runner.workers.plan.mode == mode.split("-")[-1]
        summary = runner.run()
        workers = runner.workers
        if mode == "disaggregated":  # the rollout process acts with the weights the actor trained
            workers.sync_weights()
            assert workers.rollout.call_all("checksum") == [state_checksum(runner.policy)]
            assert workers.rollout.call_all("version") == [3]
    finally:
        runner.close()
    rows = [r for r in read_metrics(summary.run_dir / "logs") if "train/loss" in r]
    assert [r["iteration"] for r in rows] == [1, 2]
    assert all(np.isfinite(r["train/loss"]) and r["rollout/total_env_steps"] > 0 for r in rows)
    assert summary.checkpoint is not None and summary.final_eval is not None
