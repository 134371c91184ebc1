"""The Ray executor: the two runs of a tiny sweep execute concurrently as Ray tasks on a private Ray
instance, each in its own folder, and the report reads them like local runs."""

from __future__ import annotations

import csv
import json

import pytest
from sweep_helpers import write_sweep

from vla_rl.cli.sweep import main as sweep_main
from vla_rl.config.sweep import ExecutorConfig
from vla_rl.sweep.executors import ray_slots

pytest.importorskip("ray")


def test_slots_follow_the_cluster_resources():
    assert ray_slots(ExecutorConfig(name="ray", cpus_per_run=2), {"CPU": 9}) == 4
    assert ray_slots(ExecutorConfig(name="ray", cpus_per_run=1, gpus_per_run=1), {"CPU": 16, "GPU": 3}) == 3
    assert ray_slots(ExecutorConfig(name="ray", cpus_per_run=1, max_concurrent=2), {"CPU": 16}) == 2
    with pytest.raises(RuntimeError, match="cannot fit one run"):
        ray_slots(ExecutorConfig(name="ray", cpus_per_run=4), {"CPU": 2})


@pytest.mark.slow
def test_runs_execute_concurrently_as_ray_tasks(tmp_path):
    path = write_sweep(tmp_path / "ray.yaml", budget={"env_steps": 10}, output_dir=str(tmp_path / "out"),
                       executor={"name": "ray", "cpus_per_run": 1})
    assert sweep_main([str(path), "--no-progress", "--no-plots"]) == 0
    runs = tmp_path / "out" / "runs"
    windows = []
    for name in ("ppo__seed0", "grpo__seed0"):
        attempt = json.loads((runs / name / "sweep_run.json").read_text())["attempts"][-1]
        assert attempt["returncode"] == 0
        windows.append((attempt["started"], attempt["started"] + attempt["seconds"]))
    (a0, a1), (b0, b1) = windows
    assert max(a0, b0) < min(a1, b1), f"runs did not overlap in time: {windows}"
    table = {r["algorithm"]: r for r in csv.DictReader(open(tmp_path / "out" / "table.csv"))}
    for name in ("ppo", "grpo"):
        final = json.loads((runs / f"{name}__seed0" / "eval" / "final.json").read_text())
        assert float(table[name]["success_mean"]) == final["success_rate"]
