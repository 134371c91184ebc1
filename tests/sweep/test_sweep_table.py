"""The table from run folders: numbers equal the runs' own eval records and metrics (recomputed here
straight from the files), resumed runs count the attempt that finished, and folder states are read
right (done / resume / fresh / changed)."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from run_outputs import write_run
from sweep_helpers import write_sweep

from vla_rl.config.sweep import load_sweep
from vla_rl.eval.stats import wilson_interval
from vla_rl.sweep.plan import plan_sweep, run_status
from vla_rl.sweep.report import build_report
from vla_rl.sweep.results import effective_rows, eval_curve, load_run_result
from vla_rl.sweep.stats import t_quantile_975

FAMILY = {"name": "family", "key": "model.family", "values": ["cnn", "openvla"]}
THRESHOLD = 0.5


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "logs" / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def finished_sweep(tmp_path):
    """A 2x2 grid with 3 seeds, one run of which was interrupted and resumed, one never finished."""
    path = write_sweep(tmp_path / "s.yaml", grid=[{"name": "algorithm", "bundles": {
        "ppo": {"algorithm.name": "ppo"}, "ppo_lowlr": {"algorithm.lr": 1e-5}}}, FAMILY], seeds=[0, 1, 2],
        success_threshold=THRESHOLD)
    sweep = load_sweep(path)
    plans = plan_sweep(sweep, tmp_path / "out", path)
    rng = np.random.default_rng(123)
    for i, plan in enumerate(plans):
        write_run(plan, rng, iterations=4 + i % 3, interrupted_after=1 if i == 1 else None,
                  finish=i != len(plans) - 1, peak_memory=int(rng.integers(1, 4)) * 2**30)
    return sweep, plans, tmp_path / "out"


def test_cells_equal_the_runs_own_eval_records(finished_sweep):
    sweep, plans, out = finished_sweep
    report = build_report(sweep, plans, out, plots=False)
    assert report.unfinished == [plans[-1].spec.name]
    table = {(r["algorithm"], r["family"]): r for r in csv.DictReader(open(report.files["table_csv"]))}
    assert len(table) == 4
    for plan_group in _by_cell(plans):
        finals = [json.loads((p.run_dir / "eval" / "final.json").read_text()) for p in plan_group
                  if (p.run_dir / "eval" / "final.json").is_file()]
        row = table[(plan_group[0].spec.labels["algorithm"], plan_group[0].spec.labels["family"])]
        rates = [f["success_rate"] for f in finals]
        assert int(row["seeds"]) == len(finals)
        assert float(row["success_mean"]) == pytest.approx(np.mean(rates))
        if len(rates) > 1:
            half = t_quantile_975(len(rates) - 1) * np.std(rates, ddof=1) / math.sqrt(len(rates))
            assert float(row["success_t95_low"]) == pytest.approx(max(0.0, np.mean(rates) - half))
            assert float(row["success_t95_high"]) == pytest.approx(min(1.0, np.mean(rates) + half))
        k = sum(e["success"] for f in finals for e in f["episodes"])
        n = sum(len(f["episodes"]) for f in finals)
        assert (int(row["pooled_successes"]), int(row["pooled_episodes"])) == (k, n)
        assert (float(row["wilson95_low"]), float(row["wilson95_high"])) == pytest.approx(wilson_interval(k, n))
        assert float(row["env_steps"]) == pytest.approx(np.mean([f["env_steps"] for f in finals]))
        assert float(row["return_mean"]) == pytest.approx(np.mean([np.mean([e["return"] for e in f["episodes"]])
                                                                    for f in finals]))


def _by_cell(plans):
    out = {}
    for p in plans:
        out.setdefault(p.spec.cell_name, []).append(p)
    return list(out.values())


def test_threshold_and_throughput_follow_the_metrics(finished_sweep):
    sweep, plans, out = finished_sweep
    report = build_report(sweep, plans, out, plots=False)
    runs = {r["run"]: r for r in csv.DictReader(open(report.files["runs_csv"]))}
    for plan in plans[:-1]:
        rows = effective_rows(_rows(plan.run_dir))
        # recomputed here: walk the rows, keeping cumulative steps and training seconds
        steps, seconds, hit = {0: 0.0}, {0: 0.0}, None
        spent = 0.0
        for row in rows:
            if "rollout/total_env_steps" in row:
                spent += sum(v for k, v in row.items() if k.startswith("time/") and k not in ("time/setup", "time/eval"))
                steps[row["iteration"]], seconds[row["iteration"]] = row["rollout/total_env_steps"], spent
            elif row.get("eval/success_rate", -1) >= THRESHOLD and hit is None:
                hit = (steps[row["iteration"]], seconds[row["iteration"]])
        got = runs[plan.spec.name]
        if hit is None:
            assert got["env_steps_to_threshold"] == "" and got["train_seconds_to_threshold"] == ""
        else:
            assert float(got["env_steps_to_threshold"]) == pytest.approx(hit[0])
            assert float(got["train_seconds_to_threshold"]) == pytest.approx(hit[1])
        rollout = sum(r["time/rollout"] for r in rows if "rollout/total_env_steps" in r)
        assert float(got["rollout_env_steps_per_s"]) == pytest.approx(int(got["env_steps"]) / rollout)
        assert float(got["train_env_steps_per_s"]) == pytest.approx(int(got["env_steps"]) / spent)
        record = json.loads((plan.run_dir / "sweep_run.json").read_text())
        assert int(got["peak_memory_bytes"]) == record["attempts"][-1]["peak_memory_bytes"]


def test_resumed_run_counts_the_rows_of_the_attempt_that_finished(finished_sweep):
    _, plans, _ = finished_sweep
    run_dir = plans[1].run_dir
    raw = _rows(run_dir)
    train_iterations = [r["iteration"] for r in raw if "rollout/total_env_steps" in r]
    assert train_iterations.count(2) == 2, "the helper should log iteration 2 in both attempts"
    kept = effective_rows(raw)
    assert [r["iteration"] for r in kept if "rollout/total_env_steps" in r] == sorted(set(train_iterations))
    second_attempt_row = [r for r in raw if r["iteration"] == 2 and "rollout/total_env_steps" in r][-1]
    assert second_attempt_row in kept
    curve = eval_curve(kept)
    assert [p.iteration for p in curve] == sorted(p.iteration for p in curve)
    result = load_run_result(run_dir, plans[1].spec.name, plans[1].spec.labels, plans[1].spec.seed)
    final = json.loads((run_dir / "eval" / "final.json").read_text())
    assert curve[-1].success_rate == result.final_success == final["success_rate"]


def test_markdown_table_shows_the_csv_numbers(finished_sweep):
    sweep, plans, out = finished_sweep
    report = build_report(sweep, plans, out, plots=False)
    text = report.files["table_md"].read_text()
    for row in report.rows:
        line = next(l for l in text.splitlines() if l.startswith(f"| {row.labels['algorithm']} | {row.labels['family']} |"))
        assert f"{100 * row.success_mean:.1f}" in line
        assert f"{row.pooled_successes}/{row.pooled_episodes}" in line
        assert ("not reached" in line) == (row.reached == 0)


def test_report_writes_one_plot_per_task(finished_sweep, tmp_path):
    sweep, plans, out = finished_sweep
    task_sweep = replace(sweep, plot_by="family")
    report = build_report(task_sweep, plans, out, plots=True)
    assert sorted(p.name for p in report.plots) == ["sweep_tiny_cnn.png", "sweep_tiny_openvla.png"]
    assert all(p.stat().st_size > 10_000 for p in report.plots)


def test_folder_states(tmp_path, sweep_file):
    sweep = load_sweep(sweep_file)
    plan = plan_sweep(sweep, tmp_path / "out", sweep_file)[0]
    assert run_status(plan.run_dir, plan.config_hash)[0] == "fresh"
    rng = np.random.default_rng(0)
    write_run(plan, rng, interrupted_after=1, finish=False)
    assert run_status(plan.run_dir, plan.config_hash) == ("resume", "interrupted; resumes from checkpoints/iter-000001")
    (plan.run_dir / "checkpoints" / "latest").unlink()
    assert run_status(plan.run_dir, plan.config_hash)[0] == "fresh"
    write_run(plan, rng)
    assert run_status(plan.run_dir, plan.config_hash)[0] == "done"
    status, detail = run_status(plan.run_dir, "0" * 12)
    assert status == "changed" and "000000000000" in detail
    # the sweep file changes a value: the same folder is now a run of another config
    changed = plan_sweep(replace(sweep, overrides={**sweep.overrides, "algorithm.lr": 5e-4}), tmp_path / "out", sweep_file)
    assert changed[0].status == "changed"


def test_changed_runs_are_refused_or_kept_as_they_ran(tmp_path, sweep_file):
    from vla_rl.sweep.driver import SweepError, run_sweep

    sweep = load_sweep(sweep_file)
    out = tmp_path / "out"
    rng = np.random.default_rng(5)
    for plan in plan_sweep(sweep, out, sweep_file):
        write_run(plan, rng)
    edited = replace(sweep, overrides={**sweep.overrides, "algorithm.lr": 5e-4})  # e.g. a default changed
    with pytest.raises(SweepError, match="--keep-changed"):
        run_sweep(edited, out, sweep_file, progress=False, plots=False)
    outcome = run_sweep(edited, out, sweep_file, progress=False, plots=False, keep_changed=True)
    assert outcome.completed == [] and sorted(outcome.skipped) == ["grpo__seed0", "ppo__seed0"]
    assert len(outcome.report.results) == 2
    assert build_report(edited, outcome.plans, out, plots=False).results == []  # strict by default
