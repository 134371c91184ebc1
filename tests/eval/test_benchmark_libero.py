"""`vla-rl eval --benchmark` and `vla-rl compare --benchmark` on the real LIBERO simulator, with tiny random
CNN policies and a reduced protocol (2 tasks x 2 init states, short episodes, 64 px raw images): the
per-task table, manifest, report and one failure video per task; a run killed mid-way resumes without
rerunning its finished episodes; shards over Ray write into one folder.

Marked `libero` and `slow`: each run builds LIBERO scenes (~10-15 s per worker, ~5 s per task switch).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vla_rl.config.model import ModelConfig
from vla_rl.models.registry import build_policy

pytestmark = [pytest.mark.libero, pytest.mark.slow]

REDUCED = ["--benchmark", "libero_spatial", "--tasks", "0,1", "--init-states", "2", "--no-progress",
           "env.image_protocol=raw", "env.image_size=64", "env.settle_steps=2"]


def _policy(path: Path, seed: int) -> Path:
    """A random tiny CNN policy folder that acts in LIBERO (7-d actions, main camera, 8-d proprio)."""
    policy = build_policy(ModelConfig(family="cnn", size="tiny", value_head=False), action_dim=7, cameras=("main",),
                          proprio_dim=8, seed=seed, gripper_convention="close_positive")
    policy.save_pretrained(str(path))
    return path


def test_benchmark_eval_writes_the_task_table_manifest_and_one_failure_video_per_task(tmp_path, capsys):
    from vla_rl.cli.main import main

    out = tmp_path / "a"
    assert main(["eval", str(_policy(tmp_path / "pa", 0)), *REDUCED, "--num-envs", "2", "--out", str(out),
                 "env.max_episode_steps=4"]) == 0
    printed = capsys.readouterr().out
    assert "PARTIAL" in printed and "not the benchmark figure" in printed
    record = json.loads((out / "results.json").read_text())
    bench = record["benchmark"]
    assert sorted(e["reset_id"] for e in record["episodes"]) == [0, 1, 10, 11]
    assert all(e["length"] == 4 and not e["success"] for e in record["episodes"])  # random policy, 4-step limit
    assert bench["suite_mean"] is None and bench["partial_mean"] == 0.0 and bench["partial"]
    assert [(r["task_index"], r["episodes"]) for r in bench["tasks"]] == [(0, 2), (1, 2)]
    assert bench["tasks"][0]["task"].startswith("libero_spatial/pick_up_the_black_bowl")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["protocol"]["name"] == "benchmark-partial" and manifest["image_protocol"] == "raw"
    assert manifest["env"]["settle_steps"] == 2 and len(manifest["checkpoint"]["policy_sha256"]) == 64
    assert "PARTIAL protocol" in (out / "report.md").read_text()
    videos = sorted(p.name for p in (out / "videos").iterdir())
    assert [v[:7] for v in videos] == ["task000", "task001"] and all((out / "videos" / v).stat().st_size > 1000
                                                                    for v in videos)
    # a second policy on the same protocol, compared with the first record: a paired test
    cmp = tmp_path / "cmp"
    assert main(["compare", str(out), str(_policy(tmp_path / "pb", 1)), *REDUCED, "--num-envs", "2", "--out", str(cmp),
                 "env.max_episode_steps=4"]) == 0
    comparison = json.loads((cmp / "comparison.json").read_text())
    assert comparison["n"] == 4 and 0.0 <= comparison["p_value"] <= 1.0
    assert main(["compare", str(out), str(cmp / "B"), "--out", str(tmp_path / "cmp2"), "--no-progress"]) == 0
    # a record of another protocol (here: another image size) cannot be paired with it
    changed = json.loads((cmp / "B" / "results.json").read_text())
    changed["benchmark"]["signature"]["image_size"] = 224
    (tmp_path / "changed.json").write_text(json.dumps(changed))
    assert main(["compare", str(out), str(tmp_path / "changed.json"), "--out", str(tmp_path / "cmp3"),
                 "--no-progress"]) == 2


def test_a_killed_benchmark_resumes_without_rerunning_finished_episodes(tmp_path):
    policy, out = _policy(tmp_path / "p", 0), tmp_path / "run"
    cmd = [sys.executable, "-m", "vla_rl.cli.main", "eval", str(policy), *REDUCED, "--num-envs", "1", "--out", str(out),
           "env.max_episode_steps=16", "--no-failure-videos"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            start_new_session=True, env=os.environ.copy())
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not list((out / "episodes").glob("r*.json")) and proc.poll() is None:
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its LIBERO workers
        proc.wait()
    before = {p.name: (p.stat().st_mtime_ns, p.read_text()) for p in (out / "episodes").glob("r*.json")}
    assert 1 <= len(before) < 4, f"the kill should land mid-run, found {sorted(before)}"
    from vla_rl.cli.main import main

    assert main(cmd[3:]) == 0
    after = {p.name: (p.stat().st_mtime_ns, p.read_text()) for p in (out / "episodes").glob("r*.json")}
    assert len(after) == 4 and all(after[name] == value for name, value in before.items())
    shards = json.loads((out / "manifest.json").read_text())["shards"]
    assert sum(s["episodes"] for s in shards) == 4 - len(before)


def test_benchmark_shards_over_ray_fill_one_folder(tmp_path):
    ray = pytest.importorskip("ray")
    from vla_rl.cli.main import main

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = tmp_path / "ray"
        assert main(["eval", str(_policy(tmp_path / "p", 2)), *REDUCED, "--num-envs", "1", "--out", str(out),
                     "env.max_episode_steps=3", "placement.backend=ray"]) == 0
    finally:
        ray.shutdown()
    shards = json.loads((out / "manifest.json").read_text())["shards"]
    assert len(shards) == 2 and [s["episodes"] for s in shards] == [2, 2]
    record = json.loads((out / "results.json").read_text())
    assert sorted(e["reset_id"] for e in record["episodes"]) == [0, 1, 10, 11]
    assert len(list((out / "videos").glob("*.mp4"))) == 2  # one per task, whichever shard wrote it
