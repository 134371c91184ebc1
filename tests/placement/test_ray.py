"""The Ray backend (slow): env and rollout workers as Ray actors in a placement group, per the plan.

A local Ray started here with 2 CPUs and 2 fake GPUs (Ray gives each actor its CUDA_VISIBLE_DEVICES;
torch stays on the CPU). Plan: env on GPU 0 (two env actors, one per pipeline stage), rollout on
GPU 1, actor on all: a hybrid, pipelined in 2 stages. The runner trains two iterations unchanged;
then every worker must have seen the device its plan gave it.
"""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from placement.weight_sync import state_checksum  # noqa: E402
from vla_rl.config.loader import load_config  # noqa: E402
from vla_rl.runner.loop import Runner  # noqa: E402
from vla_rl.metrics_log import read_metrics  # noqa: E402

TINY = ["runner.iterations=2", "rollout.steps_per_iteration=3", "env.num_envs=2", "env.max_episode_steps=4",
        "runner.eval_episodes=2", "runner.eval_initial=false", "runner.video=false", "algorithm.num_minibatches=2"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_hybrid_places_workers_on_their_planned_gpus_and_trains(local_ray, tmp_path):
    config = load_config("quickstart_ppo", [*TINY, "placement.backend=ray", "placement.env=0", "placement.rollout=1",
                                "placement.actor=all", "placement.pipeline_stages=2",
                                f"runner.output_dir={tmp_path}", "runner.name=ray"])
    runner = Runner(config, progress=False)
    try:
        plan = runner.workers.plan
        assert (plan.backend, plan.mode, plan.cluster.kind, plan.env.workers) == ("ray", "hybrid", "gpu", 2)
        env_seen = runner.env.devices()
        rollout_seen = runner.workers.rollout.call_all("visible_devices")
        summary = runner.run()
        runner.workers.sync_weights()
        assert runner.workers.rollout.call_all("checksum") == [state_checksum(runner.policy)]
    finally:
        runner.close()
    env_gpus = {d["CUDA_VISIBLE_DEVICES"] for d in env_seen}
    rollout_gpus = {d["CUDA_VISIBLE_DEVICES"] for d in rollout_seen}
    assert len(env_gpus) == 1 and len(rollout_gpus) == 1, (env_seen, rollout_seen)  # one GPU per component
    assert env_gpus.isdisjoint(rollout_gpus) and env_gpus | rollout_gpus <= {"0", "1"}
    for seen in env_seen:
        assert seen["gpu_ids"] == [seen["CUDA_VISIBLE_DEVICES"]]
        assert seen["workers"] and set(seen["workers"].values()) == env_gpus  # simulator processes inherit it
    rows = [r for r in read_metrics(summary.run_dir / "logs") if "train/loss" in r]
    assert [r["iteration"] for r in rows] == [1, 2] and all(np.isfinite(r["train/loss"]) for r in rows)
