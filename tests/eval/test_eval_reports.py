"""Evaluation outputs: the manifest records provenance, the report states Wilson intervals and
McNemar's test, and `vla-rl compare` on two real checkpoints gives a p-value."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vla_rl.config.loader import dump_config, load_config
from vla_rl.eval.compare import compare_records
from vla_rl.eval.episode_stats import EpisodeStats
from vla_rl.eval.manifest import eval_protocol
from vla_rl.eval.report import plot_learning_curve, write_evaluation
from vla_rl.eval.stats import mcnemar_exact, wilson_interval
from vla_rl.models.registry import build_policy

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ARGS = ["env.task=PushCube-v1", "env.image_size=32", "env.num_envs=2", "env.max_episode_steps=6",
        "model.family=cnn", "runner.eval_episodes=4", "rollout.eval_mode=sample", "rollout.eval_temperature=0.5"]


def _checkpoint(root, seed: int):
    """A checkpoint folder (policy/ + config.yaml) of a random tiny CNN policy."""
    config = load_config("quickstart_ppo", ARGS)
    policy = build_policy(config.model, action_dim=7, cameras=("main",), proprio_dim=8, seed=seed,
                          gripper_convention="open_positive")
    policy.save_pretrained(str(root / "policy"))
    (root / "config.yaml").write_text(dump_config(config))
    return root, config


def _result(successes, lengths) -> EpisodeStats:
    return EpisodeStats(reset_ids=list(range(1_000_000, 1_000_000 + len(successes))), successes=list(successes),
                      returns=[float(s) for s in successes], lengths=list(lengths), seconds=1.5)


def test_manifest_records_versions_ids_decoding_and_hashes(tmp_path):
    ckpt, config = _checkpoint(tmp_path / "ckpt", seed=0)
    protocol = eval_protocol(config, "benchmark")
    write_evaluation(tmp_path / "eval", _result([True, False, True, True], [3, 6, 4, 2]), config, protocol, ckpt)
    manifest = json.loads((tmp_path / "eval" / "manifest.json").read_text())
    for package in ("torch", "transformers", "mani-skill", "sapien"):
        assert manifest["packages"][package] not in ("", "not installed")
    assert manifest["reset_ids"] == [1_000_000, 1_000_001, 1_000_002, 1_000_003]
    assert manifest["decoding"] == {"mode": "sample", "temperature": 0.5}
    assert len(manifest["config_sha256"]) == 64 and len(manifest["checkpoint"]["policy_sha256"]) == 64
    assert "renderer" in manifest["renderer"] and manifest["task"] == "maniskill/PushCube-v1"
    assert manifest["image_protocol"] == "raw"
    assert manifest["protocol"]["name"] == "benchmark" and manifest["protocol"]["episodes"] == 4
    assert len(manifest["lock"]["sha256"]) == 64  # requirements.lock's hash (tests/test_lock.py checks the rest)
    table = (tmp_path / "eval" / "report.md").read_text()
    assert f"| renderer | {manifest['renderer']['renderer']} |" in table and "renderer renderer" not in table
    record = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert [e["success"] for e in record["episodes"]] == [True, False, True, True]
    # the hash follows the weights: another policy hashes differently
    other, _ = _checkpoint(tmp_path / "other", seed=1)
    write_evaluation(tmp_path / "eval2", _result([True], [3]), config, protocol, other)
    assert json.loads((tmp_path / "eval2" / "manifest.json").read_text())["checkpoint"]["policy_sha256"] != \
        manifest["checkpoint"]["policy_sha256"]


def test_report_states_wilson_intervals_and_mcnemar(tmp_path):
    config = load_config("quickstart_ppo", ARGS)
    protocol = eval_protocol(config, "benchmark")
    a = write_evaluation(tmp_path / "a", _result([False, False, True, False], [6, 6, 2, 6]), config, protocol, None)
    b = _result([True, True, True, False], [3, 4, 2, 6])
    comparison = compare_records(a, json.loads(json.dumps({"episodes": [
        {"reset_id": r, "success": s} for r, s in zip(b.reset_ids, b.successes)]})), "SFT", "RL")
    assert (comparison.only_a, comparison.only_b) == (0, 2) and comparison.p_value == mcnemar_exact(0, 2) == 0.5
    rows = [{"iteration": 0, "eval/success_rate": 0.25, "eval/episodes": 4.0},
            {"iteration": 1, "env/success_rate": 0.5}, {"iteration": 2, "eval/success_rate": 0.75, "eval/episodes": 4.0}]
    sft = [{"iteration": 0, "holdout/nll": 5.0}, {"iteration": 10, "holdout/nll": 2.0, "sft/nll": 1.5}]
    write_evaluation(tmp_path / "b", b, config, protocol, None, rl_rows=rows, sft_rows=sft, comparison=comparison)
    text = (tmp_path / "b" / "report.md").read_text()
    low, high = wilson_interval(3, 4)
    assert f"[{100 * low:.1f}%, {100 * high:.1f}%]" in text and "Wilson 95%" in text
    assert "McNemar exact test" in text and "p = 0.5" in text and "not significant" in text
    for png in ("lengths.png", "learning_curve.png"):
        assert (tmp_path / "b" / png).read_bytes()[:8] == PNG_MAGIC
    html = (tmp_path / "b" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "McNemar" in html
    assert plot_learning_curve([], tmp_path / "none.png") is None


def test_compare_refuses_different_episodes():
    a = {"episodes": [{"reset_id": 1, "success": True}, {"reset_id": 2, "success": False}]}
    b = {"episodes": [{"reset_id": 1, "success": True}, {"reset_id": 3, "success": True}]}
    with pytest.raises(ValueError, match="different reset ids"):
        compare_records(a, b)
    with pytest.raises(ValueError, match="twice"):
        compare_records({"episodes": a["episodes"] * 2}, a)


def test_compare_command_on_two_checkpoints_gives_a_p_value(tmp_path):
    from vla_rl.cli.compare import main

    a, _ = _checkpoint(tmp_path / "a", seed=0)
    b, _ = _checkpoint(tmp_path / "b", seed=1)
    out = tmp_path / "cmp"
    assert main([str(a), str(b), "--out", str(out), "--no-progress"]) == 0
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["n"] == 4 and 0.0 <= comparison["p_value"] <= 1.0
    assert comparison["p_value"] == mcnemar_exact(comparison["only_a"], comparison["only_b"])
    ids = [json.loads((out / s / "results.json").read_text())["episodes"] for s in ("A", "B")]
    assert sorted(e["reset_id"] for e in ids[0]) == sorted(e["reset_id"] for e in ids[1]) == list(range(1_000_000, 1_000_004))
    assert np.all([e["length"] <= 6 for e in ids[0] + ids[1]])
    assert "McNemar" in (out / "report.md").read_text()
    assert (out / "A" / "manifest.json").is_file() and (out / "B" / "report.html").is_file()


def test_diagnostics_table_and_figure_from_metric_rows(tmp_path):
    from vla_rl.eval.diagnostics import diagnostics_lines, plot_diagnostics

    rows = [{"iteration": i, "train/entropy": 1.0 - 0.1 * i, "train/ref_kl": 0.01 * i, "train/advantages/std": 1.0,
             "train/advantages/min": -1.5, "train/advantages/max": 2.0} for i in range(1, 9)]
    rows.insert(0, {"iteration": 0, "eval/success_rate": 0.5, "eval/episodes": 4.0})
    lines = diagnostics_lines(rows)
    entropy = next(line for line in lines if "`train/entropy`" in line)
    assert entropy.split("|")[2:6] == [" 0.9 ", " 0.4 ", " 0.2 ", " 0.9 "]  # first, mean of iterations 4-8, min, max
    assert not any("clip_fraction" in line for line in lines)  # only what the run logged
    assert plot_diagnostics(rows, tmp_path / "d.png").read_bytes()[:8] == PNG_MAGIC
    assert plot_diagnostics(rows[:1], tmp_path / "none.png") is None and diagnostics_lines(rows[:1]) == []
