"""The quickstart's replication sweep (configs/sweeps/quickstart_seeds.yaml): it runs the recipe as it is for
three seeds, its paired table (SFT vs SFT + RL per seed, mean gain with a t-interval) is computed right, and
(slow) the same machine and seeds give an identical table, at reduced size, through the real `vla-rl sweep`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from vla_rl.config.loader import load_config
from vla_rl.config.sweep import load_sweep
from vla_rl.sweep.grid import expand_grid
from vla_rl.sweep.paired import PairedRow, paired_markdown, summarize_gains

REPO = Path(__file__).resolve().parents[2]
SWEEP = REPO / "configs" / "sweeps" / "quickstart_seeds.yaml"


def test_the_sweep_runs_the_quickstart_unchanged_for_three_seeds():
    sweep = load_sweep(SWEEP)
    recipe = load_config("quickstart")
    runs = expand_grid(sweep)
    assert [r.seed for r in runs] == [0, 1, 2] and sweep.recipe == "quickstart"
    assert sweep.budget.iterations == recipe.runner.iterations, "the sweep's budget must be the recipe's iterations"
    for run in runs:
        config = load_config("quickstart", run.override_args())
        assert config.runner.seed == run.seed
        # only the seed, the run's name/folder and the video differ from the recipe
        for section in ("env", "model", "algorithm", "rollout", "warmstart", "placement"):
            assert getattr(config, section) == getattr(recipe, section), section
        assert (config.runner.iterations, config.runner.eval_episodes) == (recipe.runner.iterations,
                                                                          recipe.runner.eval_episodes)
    # the paired evaluation: >= 128 held-out episodes, none from the training or demonstration ids
    assert recipe.runner.eval_episodes >= 128
    eval_ids = range(recipe.runner.eval_seed, recipe.runner.eval_seed + recipe.runner.eval_episodes)
    train_ids = range(recipe.env.seed, recipe.env.seed + recipe.runner.iterations * recipe.env.num_envs)
    demo_ids = range(recipe.warmstart.demo_seed, recipe.warmstart.demo_seed + 10 * recipe.warmstart.demos)
    assert not set(eval_ids) & set(train_ids) and not set(eval_ids) & set(demo_ids)


def _row(seed: int, before: int, after: int, p: float, n: int = 128) -> PairedRow:
    return PairedRow(run=f"seed{seed}", labels={}, seed=seed, n=n, before=before, after=after,
                     only_before=max(before - after, 0) + 3, only_after=max(after - before, 0) + 3, p_value=p,
                     wall_seconds=600.0 + seed)


def test_paired_table_rows_and_mean_gain_interval():
    from scipy import stats

    rows = [_row(0, 60, 92, 1e-5), _row(1, 50, 80, 2e-4), _row(2, 64, 80, 0.02)]
    gains = [100 * 32 / 128, 100 * 30 / 128, 100 * 16 / 128]
    (summary,) = summarize_gains(rows)
    mean = sum(gains) / 3
    half = stats.t.ppf(0.975, 2) * stats.tstd(gains) / 3 ** 0.5
    assert summary.mean_gain == pytest.approx(mean)
    assert (summary.low, summary.high) == (pytest.approx(mean - half, abs=1e-3), pytest.approx(mean + half, abs=1e-3))
    assert summary.significant == 2  # seed 2 is ahead at p = 0.02, not below 0.01
    text = paired_markdown(rows, [])
    assert "| 0 | 46.9% (60/128) | 71.9% (92/128) | +25.0 | 3 / 35 | 1e-05 | 10 min 0 s |" in text
    assert f"mean gain {mean:+.1f} points [{mean - half:+.1f}, {mean + half:+.1f}]" in text
    assert "2 of 3 ahead at McNemar p < 0.01" in text
    (one,) = summarize_gains(rows[:1])
    assert one.low is None and "over 1 seed(s)" in paired_markdown(rows[:1], [])
    # a seed that got worse is never counted as ahead, however small its p
    assert summarize_gains([_row(0, 90, 60, 1e-6)])[0].significant == 0


TINY = {"env": {"num_envs": 2, "num_workers": 1, "max_episode_steps": 25},
        "algorithm": {"group_size": 2, "num_minibatches": 2}, "rollout": {"steps_per_iteration": 25},
        "runner": {"eval_episodes": 4, "video": False},
        "warmstart": {"demos": 2, "demo_envs": 2, "sft_steps": 5, "eval_loss_every": 5}}
"""Reduced sizes: 2 envs in one worker process (one group), 25-step episodes, 2 demos, 5 SFT steps, 4 paired
evaluation episodes."""


@pytest.mark.slow
def test_same_machine_and_seeds_give_an_identical_table(tmp_path):
    from vla_rl.cli.sweep import main as sweep_main
    from vla_rl.config.sweep import load_sweep as load
    from vla_rl.sweep.paired import read_paired_row

    data = yaml.safe_load(SWEEP.read_text())
    data.update(overrides=TINY, seeds=[0], budget={"iterations": 1})
    tables = []
    for attempt in ("a", "b"):
        data["output_dir"] = str(tmp_path / attempt)
        path = tmp_path / f"{attempt}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        assert sweep_main([str(path), "--no-progress", "--no-plots"]) == 0
        paired = (tmp_path / attempt / "paired.md").read_text()
        assert "seed(s)" in paired and (tmp_path / attempt / "paired.csv").is_file()
        sweep = load(path)
        rows = [read_paired_row(tmp_path / attempt / "runs" / run.name, run.name, run.labels, run.seed)
                for run in expand_grid(sweep)]
        assert all(r is not None and r.n == 4 for r in rows), "a warm-started run must count as done"
        tables.append(paired_markdown([replace(r, wall_seconds=None) for r in rows], []))
    assert tables[0] == tables[1], "the same seeds on the same machine gave different tables"


def test_a_finished_warm_started_run_counts_as_done(tmp_path):
    from vla_rl.config.loader import dump_config
    from vla_rl.sweep.plan import plan_sweep, run_status

    (plan, *_) = plan_sweep(load_sweep(SWEEP), tmp_path, SWEEP)
    run_dir = plan.run_dir
    (run_dir / "sft").mkdir(parents=True)
    (run_dir / "eval").mkdir()
    (run_dir / "eval" / "final.json").write_text("{}")
    (run_dir / "sft" / "config.yaml").write_text(dump_config(plan.config))  # what the run was started with
    rl_phase = replace(plan.config, warmstart=replace(plan.config.warmstart, enabled=False),
                       model=replace(plan.config.model, pretrained=str(run_dir / "sft" / "policy")))
    (run_dir / "config.yaml").write_text(dump_config(rl_phase))  # what the runner writes for its RL phase
    assert run_status(run_dir, plan.config_hash)[0] == "done"
    (run_dir / "sft" / "config.yaml").write_text(dump_config(rl_phase))
    assert run_status(run_dir, plan.config_hash)[0] == "changed"
