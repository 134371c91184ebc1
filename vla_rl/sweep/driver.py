"""Running a sweep: plan every run, skip the finished ones, resume the interrupted ones, start the
rest, then write the report.

    plan (all configs validated first) -> prepare folders -> execute (local or Ray) -> report

Rerunning the same sweep is how it is resumed: finished runs (final evaluation present, config
hash unchanged) are skipped, interrupted runs continue from their last checkpoint, and a run folder
whose config no longer matches the sweep file stops the sweep with the choice of fixes.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rich.console import Console

from vla_rl.config.core import to_dict
from vla_rl.config.loader import dump_config
from vla_rl.config.sweep import SweepConfig
from vla_rl.sweep.executors import EXECUTORS
from vla_rl.sweep.launch import Attempt, LaunchRequest, train_argv
from vla_rl.sweep.plan import RUN_RECIPE, RUNS, RunPlan, plan_sweep
from vla_rl.sweep.progress import SweepProgress
from vla_rl.sweep.record import append_attempt, last_log_lines
from vla_rl.sweep.report import Report, build_report

TRAIN_LOG = "train.log"
"""The run subprocess's stdout and stderr, in its folder."""


class SweepError(RuntimeError):
    """A sweep cannot proceed as asked; the message says how to fix it."""


@dataclass
class SweepOutcome:
    """What one `run_sweep` call did."""

    plans: list[RunPlan]
    skipped: list[str] = field(default_factory=list)
    """Runs already finished before this call."""
    completed: list[str] = field(default_factory=list)
    """Runs this call finished (resumed ones included)."""
    resumed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    """Runs left for a later call (--max-runs)."""
    report: Report | None = None


def prepare_run(plan: RunPlan) -> LaunchRequest:
    """Clear a folder that cannot be resumed, write the run's resolved recipe, build its command."""
    if plan.status in ("fresh", "changed") and plan.run_dir.exists():
        if plan.run_dir.parent.name != RUNS:  # a guard: only ever delete a run folder of a sweep
            raise SweepError(f"refusing to delete {plan.run_dir}: not inside a sweep's {RUNS}/ folder")
        shutil.rmtree(plan.run_dir)
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    recipe = plan.run_dir / RUN_RECIPE
    recipe.write_text(dump_config(plan.config))
    resume = plan.checkpoints if plan.status == "resume" else None
    return LaunchRequest(run_dir=str(plan.run_dir), argv=train_argv(recipe, resume),
                         log_path=str(plan.run_dir / TRAIN_LOG), resumed_from=str(resume) if resume else None)


def changed_error(changed: list[RunPlan], sweep_file: str) -> SweepError:
    lines = "\n".join(f"  {p.spec.name}: {p.detail}" for p in changed)
    return SweepError(f"{len(changed)} run folder(s) hold runs of another config than {sweep_file} now asks for:\n{lines}\n"
                      "Rerun with --redo-changed to delete and retrain them, --keep-changed to accept the finished ones "
                      "as they ran, or give the sweep a new output_dir (--out).")


def run_sweep(sweep: SweepConfig, output_dir: Path, sweep_file: Path | None = None, console: Console | None = None,
              max_runs: int | None = None, redo_changed: bool = False, keep_changed: bool = False,
              progress: bool = True, plots: bool = True) -> SweepOutcome:
    """Run what is left of the sweep, then write its report. See the module docstring."""
    console = console or Console(stderr=True)
    output_dir = Path(output_dir)
    plans = plan_sweep(sweep, output_dir, sweep_file)
    changed = [p for p in plans if p.status == "changed" and not p.counts_as_done(keep_changed)]
    if changed and not redo_changed:
        raise changed_error(changed, str(sweep_file or sweep.name))
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "sweep.yaml").write_text(yaml.safe_dump(to_dict(sweep), sort_keys=False))
    if not any(p.config.runner.save_every for p in plans):
        console.print("[yellow]note:[/yellow] runner.save_every is 0: an interrupted run restarts from scratch "
                      "(set runner.save_every in the sweep's overrides to resume from checkpoints)")
    outcome = SweepOutcome(plans=plans, skipped=[p.spec.name for p in plans if p.counts_as_done(keep_changed)])
    todo = [p for p in plans if not p.counts_as_done(keep_changed)]
    if max_runs is not None:
        todo, later = todo[:max_runs], todo[max_runs:]
        outcome.deferred = [p.spec.name for p in later]
    by_dir = {str(p.run_dir): p for p in todo}
    requests = [prepare_run(p) for p in todo]
    bar = SweepProgress(console, len(plans), sweep.budget.env_steps, enabled=progress)

    def on_start(request: LaunchRequest) -> None:
        plan = by_dir[request.run_dir]
        bar.start_run(plan.spec.name, plan.run_dir, "resuming" if request.resumed_from else "")
        console.print(f"run {plan.spec.name}: " + (plan.detail if request.resumed_from else "started"))

    def on_done(request: LaunchRequest, attempt: Attempt) -> None:
        plan = by_dir[request.run_dir]
        append_attempt(plan, attempt)
        ok = attempt.returncode == 0
        (outcome.completed if ok else outcome.failed).append(plan.spec.name)
        if ok and request.resumed_from:
            outcome.resumed.append(plan.spec.name)
        bar.finish_run(plan.spec.name, f"{'ok' if ok else 'FAILED'} {attempt.seconds:.0f}s")
        peak = "" if attempt.peak_memory_bytes is None else f", peak memory {attempt.peak_memory_bytes / 2**30:.2f} GiB"
        console.print(f"run {plan.spec.name}: {'finished' if ok else 'FAILED'} in {attempt.seconds:.0f} s{peak}")
        if not ok:
            console.print(f"[red]run {plan.spec.name} failed[/red] (exit {attempt.returncode}); "
                          f"end of {request.log_path}:\n{last_log_lines(Path(request.log_path))}")

    with bar:
        for _ in outcome.skipped:
            bar.advance_grid(note="skipped (finished)")
        EXECUTORS.get(sweep.executor.name)(requests, sweep.executor, bar, on_start, on_done)
    outcome.report = build_report(sweep, plans, output_dir, plots=plots, keep_changed=keep_changed)
    return outcome


__all__ = ["run_sweep", "prepare_run", "SweepOutcome", "SweepError", "TRAIN_LOG"]
