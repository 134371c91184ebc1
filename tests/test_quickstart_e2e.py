"""End to end: the quickstart recipe on reduced sizes, through the real CLI entry point.

Real ManiSkill3 (CPU physics, software rendering): scripted demonstrations, SFT of the recipe's
policy, GRPO (one group of 2), checkpoint, evaluation, video; then `vla-rl eval` on the checkpoint
it wrote. The PPO quickstart runs the same path in tests/sft/test_warmstart.py (slow).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vla_rl.cli.main import main
from vla_rl.models.registry import load_policy
from vla_rl.metrics_log import read_metrics
from vla_rl.runner.loop import Runner

SMALL = ["runner.iterations=2", "rollout.steps_per_iteration=25", "env.num_envs=2", "env.max_episode_steps=25",
         "algorithm.group_size=2",
         "runner.eval_episodes=2", "algorithm.num_minibatches=2", "warmstart.demos=2", "warmstart.sft_steps=5",
         "warmstart.eval_loss_every=5", "runner.eval_every=1", "runner.eval_every_episodes=1"]


def _probe_obs() -> dict:
    rng = np.random.default_rng(0)
    return {"images": {"main": rng.integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)},
            "proprio": rng.normal(size=(3, 8)).astype(np.float32),
            "instruction": ["pick up the cube"] * 3}


IN_MEMORY: dict[str, tuple[np.ndarray, torch.Tensor]] = {}
"""Checkpoint folder name -> the greedy actions and log-probs of the trained in-memory policy when it was saved."""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    save = Runner.save

    def save_and_remember(self, obs=None):  # the real save, then what the policy it saved answers (greedy:
        path = save(self, obs)               # no random draws, so the run itself is unchanged)
        with torch.no_grad():
            self.policy.eval()
            probe = self.policy.act(_probe_obs(), mode="greedy")
            IN_MEMORY[path.name] = (probe.actions.copy(), self.policy.evaluate(probe.forward_inputs).logprobs.clone())
        return path

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Runner, "save", save_and_remember)
        code = main(["train", *SMALL, f"runner.output_dir={out}", "runner.name=e2e", "--no-progress"])
    assert code == 0
    return out / "e2e"


def test_train_writes_config_logs_checkpoint_and_video(run_dir):
    assert (run_dir / "config.yaml").is_file()
    assert (run_dir / "sft" / "policy" / "config.json").is_file(), "the recipe's warm start did not run"
    assert (run_dir / "eval" / "comparison.json").is_file(), "no paired SFT vs RL comparison"
    rows = read_metrics(run_dir / "logs")
    train_rows = [r for r in rows if "train/loss" in r]
    assert [r["iteration"] for r in train_rows] == [1, 2]
    for row in train_rows:
        assert np.isfinite(row["train/loss"])
        assert row["rollout/total_env_steps"] > 0
    evals = {r["iteration"]: r["eval/episodes"] for r in rows if "eval/success_rate" in r}
    assert evals == {0: 2, 1: 1, 2: 2}, "initial, the bounded curve evaluation (1 episode) at iteration 1, final"
    assert list((run_dir / "logs").glob("events.out.tfevents.*")), "no TensorBoard event file"
    assert (run_dir / "checkpoints" / "latest").read_text().strip() == "iter-000002"
    video = run_dir / "videos" / "eval-iter-000002.mp4"
    assert video.is_file() and video.stat().st_size > 1000


def test_diagnostics_are_logged_and_reported(run_dir):
    train_rows = [r for r in read_metrics(run_dir / "logs") if "train/loss" in r]
    for row in train_rows:
        for key in ("train/entropy", "train/ref_kl", "train/approx_kl", "train/clip_fraction",
                    "train/filtered_group_fraction"):
            assert np.isfinite(row[key]), key
        if row["train/filtered_group_fraction"] < 1:  # the advantages' spread over the groups kept (none: no value)
            assert np.isfinite(row["train/advantages/std"]) and row["train/advantages/max"] > 0
        assert row["train/ref_kl"] >= 0 and 0 <= row["train/filtered_group_fraction"] <= 1
    report = (run_dir / "eval" / "report.md").read_text()
    assert "## Training diagnostics" in report and "`train/ref_kl`" in report and "`train/clip_fraction`" in report
    assert (run_dir / "eval" / "diagnostics.png").read_bytes()[:4] == b"\x89PNG"


def test_checkpoint_reloads_as_the_policy_that_was_trained(run_dir):
    """The saved policy, loaded from disk, answers as the in-memory one did when the run saved it."""
    assert "iter-000002" in IN_MEMORY, sorted(IN_MEMORY)
    actions, logprobs = IN_MEMORY["iter-000002"]
    loaded = load_policy(str(run_dir / "checkpoints" / "iter-000002" / "policy"))
    with torch.no_grad():
        out = loaded.act(_probe_obs(), mode="greedy")
        np.testing.assert_array_equal(out.actions, actions)
        torch.testing.assert_close(loaded.evaluate(out.forward_inputs).logprobs, logprobs)


def test_eval_command_on_written_checkpoint(run_dir, tmp_path):
    code = main(["eval", str(run_dir), "runner.eval_episodes=2", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    record = json.loads((tmp_path / "results.json").read_text())
    assert len(record["episodes"]) == 2
    assert sorted(e["reset_id"] for e in record["episodes"]) == [1_000_000, 1_000_001]
    assert 0.0 <= record["success_rate"] <= 1.0
