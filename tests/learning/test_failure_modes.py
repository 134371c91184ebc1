"""tools/failure_modes.py: the episode verdicts from privileged state, and a run on the real simulator."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

from failure_modes import EpisodeTrace, judge, main, summarise  # noqa: E402

from vla_rl.config.loader import dump_config, load_config  # noqa: E402
from vla_rl.models.registry import build_policy  # noqa: E402


def _trace(rid, success, cube_path, tcp_path):
    cube = np.asarray(cube_path, dtype=float)
    return EpisodeTrace(rid, success, len(cube), cube[0].copy(), cube, np.asarray(tcp_path, dtype=float))


def test_verdicts_sort_episodes_by_what_the_cube_did():
    # the gripper comes down 5 cm beside the cube's line and never touches it
    missed = _trace(1, False, [[0.5, 0.0]] * 3, [[0.4, 0.05, 0.1], [0.45, 0.05, 0.02], [0.45, 0.05, 0.02]])
    # the cube is pushed 6 cm along x and 2 cm sideways, not onto the goal
    short = _trace(2, False, [[0.5, 0.0], [0.53, 0.01], [0.56, 0.02]], [[0.45, 0.0, 0.02]] * 3)
    # the gripper never lowers
    hover = _trace(3, False, [[0.5, 0.0]] * 2, [[0.4, 0.0, 0.1]] * 2)
    done = _trace(4, True, [[0.5, 0.0], [0.62, 0.0]], [[0.45, 0.0, 0.02], [0.57, 0.0, 0.02]])
    verdicts = [judge(t) for t in (missed, short, hover, done)]
    assert [v.outcome for v in verdicts] == ["untouched", "pushed_short", "untouched", "success"]
    assert verdicts[0].offset_at_push_height_m == np.float64(0.05)
    assert verdicts[1].sideways_drift_m == np.float64(0.02) and abs(verdicts[1].cube_moved_m - np.hypot(0.06, 0.02)) < 1e-12
    assert verdicts[2].offset_at_push_height_m is None
    summary = summarise(verdicts)
    assert (summary["success"], summary["untouched"], summary["pushed_short"], summary["never_at_push_height"]) == (1, 2, 1, 1)
    assert abs(summary["untouched_offset_m"] - 0.05) < 1e-12
    assert abs(summary["pushed_sideways_drift_m"] - 0.01) < 1e-12  # mean over the pushed episodes: 0.02 and 0.0


def test_a_run_on_the_simulator_judges_every_episode(tmp_path):
    args = ["env.task=PushCube-v1", "env.image_size=32", "env.num_envs=2", "env.max_episode_steps=4",
            "env.mesh_detail=0.05", "model.family=cnn", "runner.eval_episodes=3"]
    config = load_config("quickstart_ppo", args)
    build_policy(config.model, action_dim=7, cameras=("main",), proprio_dim=8, seed=0,
                 gripper_convention="open_positive").save_pretrained(str(tmp_path / "policy"))
    (tmp_path / "config.yaml").write_text(dump_config(config))
    assert main([str(tmp_path), "--no-progress"]) == 0
    report = json.loads((tmp_path / "failure_modes.json").read_text())
    assert report["reset_ids"] == [1_000_000, 1_000_001, 1_000_002]
    assert [e["reset_id"] for e in report["episodes"]] == report["reset_ids"]
    assert all(1 <= e["steps"] <= 4 for e in report["episodes"])
    counts = report["summary"]
    assert counts["success"] + counts["untouched"] + counts["pushed_short"] == 3
