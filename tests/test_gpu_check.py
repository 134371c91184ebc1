"""tools/gpu_check.sh: the dry run lists its steps, bad input is refused, a machine without CUDA reports every
part skipped, a spent budget skips the rest; in the slow tier the CPU smoke runs every part at tiny size
(CI's rehearsal of the GPU check). The GPU run itself is the check (docs/placement.md, "GPU check")."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
MODULES = {"a": "decode", "b": "oft", "c": "update", "d": "sim", "e": "hybrid", "f": "sync"}
PARTS = "".join(MODULES)


def _check(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, VLA_RL_PYTHON=sys.executable, PYTHONPATH=str(ROOT))
    return subprocess.run(["bash", str(ROOT / "tools" / "gpu_check.sh"), *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_dry_run_lists_every_step_and_runs_nothing(tmp_path):
    out = tmp_path / "check.json"
    for smoke in (False, True):
        r = _check("--dry-run", "--out", str(out), *(["--cpu-smoke"] if smoke else []))
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert [line.split()[0] for line in lines if line.startswith("  (")] == [f"({k})" for k in PARTS]
        assert any("setup" in line for line in lines) and any(str(out) in line for line in lines)
        assert ("CPU smoke: tiny" in r.stdout) == smoke and ("GPU: 7b bf16" in r.stdout) == (not smoke)
    assert not out.exists() and not (tmp_path / "check_logs").exists()


def test_an_unknown_part_is_refused_naming_the_parts():
    r = _check("--dry-run", "--parts", "a,z")
    assert r.returncode == 2 and "unknown part(s) ['z']" in r.stderr and "choose among a, b, c, d, e, f" in r.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the report of a machine without CUDA")
def test_without_cuda_every_part_is_skipped_and_the_report_is_written(tmp_path):
    out = tmp_path / "check.json"
    r = _check("--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("skipped: no CUDA device") == len(PARTS) and "0/6 parts ran, 6 skipped" in r.stdout
    report = json.loads(out.read_text())
    assert report["mode"] == "gpu" and report["machine"]["cuda_available"] is False
    assert [(k, v["status"]) for k, v in report["parts"].items()] == [(k, "skipped") for k in PARTS]


def test_a_spent_budget_skips_the_parts_left(tmp_path):
    out = tmp_path / "check.json"
    r = _check("--cpu-smoke", "--parts", "a,f", "--budget", "5", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("skipped: the 5 s budget of the parts is spent") == 2
    assert {v["status"] for v in json.loads(out.read_text())["parts"].values()} == {"skipped"}


def _sane(key: str, part: dict) -> None:
    """What each part's numbers must satisfy at any size."""
    if key == "a":
        assert part["bandwidth_bytes_per_s"] > 0 and len(part["batches"]) == 2
        for b in part["batches"]:
            assert b["token_step_s"] >= 0 and b["floor_s"] > 0 and b["generate_s"] > 0
            assert b["greedy_tokens_equal_generate"], "our KV-cache decoder and generate pick the same greedy tokens"
    elif key == "b":
        assert [b["chunk"] for b in part["batches"]] == [2, 2] and all(b["actions_per_s"] > 0 for b in part["batches"])
    elif key == "c":
        for name in ("ppo", "grpo"):
            assert part[name]["minibatch_updates"] == 2 and math.isfinite(part[name]["loss"])
            assert part[name]["plan"]["train_bytes"] > part[name]["plan"]["rollout_bytes"] > 0
    elif key == "d":
        (m,) = part["env_counts"]
        assert m["envs"] == 1 and min(m["raw_steps_per_s"], m["ours_steps_per_s"], m["ours_chunk8_steps_per_s"]) > 0
    elif key == "e":
        (m,) = part["cases"]
        assert m["ideal"] >= 1 and m["speedup"] > 0 and m["t_sim_s"] > 0 and m["t_inf_s"] > 0
    elif key == "f":
        assert part["rollout_equals_actor"] and part["bytes"] == 4 * part["trainable_params"]  # float32 trainables


@pytest.mark.slow
@pytest.mark.parametrize("parts", ["a,f", "b", "c", "d", "e"])
def test_cpu_smoke_runs_each_part_at_tiny_size(parts, tmp_path):
    out = tmp_path / "check.json"
    r = _check("--cpu-smoke", "--parts", parts, "--out", str(out), timeout=900)
    keys = parts.split(",")
    assert r.returncode == 0, r.stderr
    assert f"{len(keys)}/{len(keys)} parts ran, 0 skipped" in r.stdout, r.stdout
    report = json.loads(out.read_text())
    assert report["mode"] == "cpu_smoke"
    for key in keys:
        part = report["parts"][key]
        assert part["status"] == "ok", part
        assert part["rows"] and all(row["item"] and row["value"] for row in part["rows"])
        assert f"({key})" in r.stdout
        _sane(key, part)
    assert sorted(p.name for p in (tmp_path / "check_logs").iterdir()) == sorted(f"{k}_{MODULES[k]}.log" for k in keys)
