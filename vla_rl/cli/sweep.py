"""`vla-rl sweep SWEEP.yaml`: train a grid of runs (algorithms x model families x tasks x seeds) at
equal cost and compare them in one table (Markdown, CSV) with learning-curve plots.

Rerun the same command to resume: finished runs are skipped, interrupted ones continue from their
last checkpoint. See docs/sweeps.md for the sweep file and what each column means.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vla_rl.cli.commands import COMMANDS, Command, run_command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep", help="sweep file (YAML; e.g. configs/sweeps/example_cpu.yaml)")
    parser.add_argument("--out", default=None, help="output folder (default: the sweep file's output_dir)")
    parser.add_argument("--dry-run", action="store_true", help="validate every run's config and show the plan; run nothing")
    parser.add_argument("--report-only", action="store_true", help="rebuild table and plots from finished runs; run nothing")
    parser.add_argument("--max-runs", type=int, default=None, help="start at most this many runs now (rerun for the rest)")
    parser.add_argument("--redo-changed", action="store_true",
                        help="delete and retrain run folders whose config no longer matches the sweep file")
    parser.add_argument("--keep-changed", action="store_true",
                        help="accept finished run folders whose config no longer matches (e.g. a default changed) as they ran")
    parser.add_argument("--executor", choices=("local", "ray"), default=None, help="override executor.name of the sweep file")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _raise_interrupt(signum, frame) -> None:  # SIGTERM ends a sweep like Ctrl-C: runs are stopped, not orphaned
    raise KeyboardInterrupt


def print_plan(console: Console, plans) -> None:
    table = Table(title="sweep plan", title_justify="left")
    for column in ("run", "status", "config", "why"):
        table.add_column(column)
    for p in plans:
        table.add_row(p.spec.name, p.status, p.config_hash, p.detail)
    console.print(table)


def print_summary(console: Console, outcome, output_dir: Path) -> None:
    report = outcome.report
    if report is not None and report.rows:
        table = Table(title="comparison (final success: mean over seeds, 95% t-interval)", title_justify="left")
        for column in (*report.axes, "seeds", "success %", "to threshold (env steps)", "env steps/s", "peak GiB"):
            table.add_column(column)
        for row in report.rows:
            ci = "" if row.success_low is None else f" [{100 * row.success_low:.1f}, {100 * row.success_high:.1f}]"
            reach = "not reached" if row.reached == 0 else f"{row.steps_to_threshold:,.0f} ({row.reached}/{row.seeds})"
            rate = "n/a" if row.rollout_env_steps_per_s is None else f"{row.rollout_env_steps_per_s:.1f}"
            peak = "n/a" if row.peak_memory_bytes is None else f"{row.peak_memory_bytes / 2**30:.2f}"
            table.add_row(*(row.labels[a] for a in report.axes), str(row.seeds), f"{100 * row.success_mean:.1f}{ci}",
                          reach, rate, peak)
        console.print(table)
    if report is not None and report.paired:
        from vla_rl.sweep.paired import paired_markdown

        console.print("before vs after RL (same held-out episodes, McNemar exact):")
        console.print(paired_markdown(report.paired, report.axes), markup=False, highlight=False, soft_wrap=True)
    counts = (f"{len(outcome.plans)} runs: {len(outcome.completed)} finished now ({len(outcome.resumed)} resumed), "
              f"{len(outcome.skipped)} skipped (already finished), {len(outcome.failed)} failed, "
              f"{len(outcome.deferred)} left for later")
    console.print(counts)
    if report is not None:
        for key, path in report.files.items():
            console.print(f"  {key:10s} {path}")
        for path in report.plots:
            console.print(f"  plot       {path}")
    console.print(f"  runs       {output_dir / 'runs'}")
    if outcome.failed:
        console.print(f"[red]failed:[/red] {', '.join(outcome.failed)} (see their train.log; rerun to retry)")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from vla_rl.config.sweep import ExecutorConfig, load_sweep
    from vla_rl.sweep.driver import SweepError, run_sweep
    from vla_rl.sweep.plan import plan_sweep
    from vla_rl.sweep.report import build_report

    console = Console()
    sweep_file = Path(args.sweep)
    sweep = load_sweep(sweep_file)
    if args.executor == "local":  # drop the file's Ray settings rather than refuse them
        sweep = replace(sweep, executor=ExecutorConfig())
    elif args.executor == "ray":
        sweep = replace(sweep, executor=replace(sweep.executor, name="ray"))
    output_dir = Path(args.out or sweep.output_dir)
    if args.dry_run or args.report_only:
        plans = plan_sweep(sweep, output_dir, sweep_file)
        print_plan(console, plans)
        if args.report_only:
            report = build_report(sweep, plans, output_dir, plots=not args.no_plots, keep_changed=args.keep_changed)
            console.print(f"report over {len(report.results)} finished runs: "
                          + ", ".join(str(p) for p in [*report.files.values(), *report.plots]))
            if report.paired:
                from vla_rl.sweep.paired import paired_markdown

                console.print(paired_markdown(report.paired, report.axes), markup=False, highlight=False, soft_wrap=True)
            if report.unfinished:
                console.print(f"not counted ({len(report.unfinished)}): {', '.join(report.unfinished)}; see the plan's "
                              "status (changed runs count with --keep-changed)")
        return 0
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        outcome = run_sweep(sweep, output_dir, sweep_file, console, max_runs=args.max_runs,
                            redo_changed=args.redo_changed, keep_changed=args.keep_changed,
                            progress=not args.no_progress, plots=not args.no_plots)
    except SweepError as exc:
        print(f"vla-rl sweep: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vla-rl sweep: interrupted; rerun `vla-rl sweep {args.sweep}` to resume (finished runs are kept)",
              file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print_summary(console, outcome, output_dir)
    return 1 if outcome.failed else 0


COMMANDS.register("sweep")(Command(help="train a grid of runs at equal cost and compare them (table and plots)",
                                   add_arguments=add_arguments, run=run))


def main(argv: list[str] | None = None) -> int:
    """`python -m vla_rl.cli.sweep ...`: the same as `vla-rl sweep ...`."""
    return run_command("sweep", argv)


if __name__ == "__main__":
    sys.exit(main())
