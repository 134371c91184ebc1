"""A two-cell sweep (PPO vs GRPO, tiny CNN, real ManiSkill PushCube) through `vla-rl sweep`, in three
invocations: the first runs one cell (--max-runs 1), the second is killed (SIGTERM) after the second
cell's first checkpoint, the third finishes the grid. The finished cell is never redone, the killed
one resumes from its checkpoint, and the table equals the runs' own eval records. The killed invocation
shows its progress bars in a pipe."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sweep_helpers import write_sweep

from vla_rl.cli.sweep import main as sweep_main
from vla_rl.eval.stats import wilson_interval
from vla_rl.metrics_log import read_metrics
from vla_rl.progress import INTERVAL_ENV
from vla_rl.sweep.results import effective_rows

pytestmark = pytest.mark.slow

BUDGET = 960
"""Env steps per run: GRPO 80 iterations of 12, so it is still training when killed after its first
checkpoint (iteration 3). On a quiet machine an iteration takes ~0.3 s: at 8 iterations (96) the run
finished before the kill landed, and at 40 (480) it did once too, with the test niced beside other jobs."""
REPO = Path(__file__).resolve().parents[2]


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.is_file():
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended (exit {proc.returncode}) before {path} appeared")
        if time.monotonic() > deadline:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.2)


def _session_alive(run_dir: Path) -> list[int]:
    import psutil

    left = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(run_dir) in part for part in (proc.info["cmdline"] or [])):
            left.append(proc.pid)
    return left


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    path = write_sweep(root / "tiny.yaml", budget={"env_steps": BUDGET}, output_dir=str(root / "out"))
    runs = root / "out" / "runs"
    ppo, grpo = runs / "ppo__seed0", runs / "grpo__seed0"
    facts: dict = {"path": path, "out": root / "out", "ppo": ppo, "grpo": grpo}

    # 1: one cell only
    assert sweep_main([str(path), "--max-runs", "1", "--no-progress", "--no-plots"]) == 0
    facts["ppo_final_mtime"] = (ppo / "eval" / "final.json").stat().st_mtime_ns
    facts["grpo_existed_after_1"] = grpo.exists()

    # 2: killed midway through the second cell, after its first checkpoint
    proc = subprocess.Popen([sys.executable, "-m", "vla_rl.cli.sweep", str(path)], cwd=REPO,  # bars on, in a pipe
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, INTERVAL_ENV: "1"})
    _wait_for(grpo / "checkpoints" / "latest", proc, timeout=600)
    proc.send_signal(signal.SIGTERM)
    facts["kill_output"] = proc.communicate(timeout=120)[0]
    facts["kill_code"] = proc.returncode
    facts["grpo_final_after_kill"] = (grpo / "eval" / "final.json").exists()
    facts["grpo_checkpoint_after_kill"] = (grpo / "checkpoints" / "latest").read_text().strip()
    facts["left_after_kill"] = _session_alive(grpo)

    # 3: rerun finishes the grid
    assert sweep_main([str(path), "--no-progress"]) == 0
    return facts


def test_first_invocation_ran_one_cell_only(sweep_run):
    assert (sweep_run["ppo"] / "eval" / "final.json").is_file()
    assert not sweep_run["grpo_existed_after_1"]


def test_kill_stops_the_run_and_leaves_no_process(sweep_run):
    assert sweep_run["kill_code"] == 130, sweep_run["kill_output"]
    assert "rerun" in sweep_run["kill_output"]
    # its progress went to a pipe: plain lines (the grid's closing line among them), no redrawn bars
    assert "\r" not in sweep_run["kill_output"] and "\x1b" not in sweep_run["kill_output"]
    assert re.search(r"^sweep: 1/2 runs \(50%\)", sweep_run["kill_output"], re.M), sweep_run["kill_output"]
    assert not sweep_run["grpo_final_after_kill"], "the run finished before the kill: raise BUDGET"
    assert sweep_run["left_after_kill"] == []


def test_rerun_skips_the_finished_run(sweep_run):
    ppo = sweep_run["ppo"]
    assert (ppo / "eval" / "final.json").stat().st_mtime_ns == sweep_run["ppo_final_mtime"]
    record = json.loads((ppo / "sweep_run.json").read_text())
    assert len(record["attempts"]) == 1 and record["finished"]


def test_rerun_resumes_the_interrupted_run_from_its_checkpoint(sweep_run):
    grpo = sweep_run["grpo"]
    record = json.loads((grpo / "sweep_run.json").read_text())
    assert [a["returncode"] for a in record["attempts"]][-1] == 0
    last = record["attempts"][-1]
    assert last["resumed_from"] == str(grpo / "checkpoints")
    resumed_at = int(sweep_run["grpo_checkpoint_after_kill"].removeprefix("iter-"))
    assert f"at iteration {resumed_at}" in (grpo / "train.log").read_text()
    final = json.loads((grpo / "eval" / "final.json").read_text())
    rows = effective_rows(read_metrics(grpo / "logs"))
    train = [r["iteration"] for r in rows if "rollout/total_env_steps" in r]
    assert train == list(range(1, final["iteration"] + 1))
    assert final["env_steps"] >= BUDGET
    assert rows[-1]["eval/success_rate"] == final["success_rate"]


def test_table_equals_the_runs_eval_records(sweep_run):
    out = sweep_run["out"]
    table = {r["algorithm"]: r for r in csv.DictReader(open(out / "table.csv"))}
    assert sorted(table) == ["grpo", "ppo"]
    for name in ("ppo", "grpo"):
        final = json.loads((sweep_run[name] / "eval" / "final.json").read_text())
        row = table[name]
        k = sum(e["success"] for e in final["episodes"])
        n = len(final["episodes"])
        assert int(row["seeds"]) == 1 and row["runs"] == f"{name}__seed0"
        assert float(row["success_mean"]) == final["success_rate"] == k / n
        assert (int(row["pooled_successes"]), int(row["pooled_episodes"])) == (k, n)
        assert (float(row["wilson95_low"]), float(row["wilson95_high"])) == pytest.approx(wilson_interval(k, n))
        assert float(row["env_steps"]) == final["env_steps"]
        assert float(row["rollout_env_steps_per_s"]) > 0 and int(row["peak_memory_bytes"]) > 100 * 2**20
    markdown = (out / "table.md").read_text()
    assert "| ppo | 1 |" in markdown and "| grpo | 1 |" in markdown
    assert (out / "plots" / "sweep_tiny.png").stat().st_size > 10_000
    assert os.path.isfile(out / "sweep.yaml")
