"""`vla-rl train [RECIPE] [key=value ...]`: train a policy; with no arguments, the quickstart.

With a distributed engine the ranks are started by torchrun, which runs this module:
    torchrun --nproc-per-node 2 -m vla_rl.cli.train [RECIPE] placement.engine=fsdp2 [key=value ...]
(`placement/data_parallel.py`); only rank 0 prints the summary and writes the report.
"""

from __future__ import annotations

import argparse
import signal
import sys

from rich.console import Console
from rich.table import Table

from vla_rl.cli.commands import COMMANDS, Command, add_recipe_arguments, run_command, split_recipe_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recipe_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def print_summary(console: Console, summary) -> None:
    from vla_rl.eval.episodes import format_rate

    table = Table(title=f"vla-rl train: {summary.run_dir.name}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    if summary.initial_eval is not None:
        table.add_row("initial success", format_rate(summary.initial_eval.successes))
    if summary.final_eval is not None:
        table.add_row("final success", format_rate(summary.final_eval.successes))
    table.add_row("iterations", str(summary.iterations))
    rollout_s = summary.phase_seconds.get("rollout", 0.0)
    table.add_row("env steps", f"{summary.env_steps} ({summary.env_steps / max(rollout_s, 1e-9):.1f} env steps/s in rollout)")
    table.add_row("policy actions", f"{summary.policy_actions} ({summary.policy_actions / max(rollout_s, 1e-9):.1f} actions/s in rollout)")
    phases = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(summary.phase_seconds.items(), key=lambda kv: -kv[1]))
    table.add_row("time per phase", phases)
    table.add_row("wall time", f"{summary.wall_seconds:.1f} s (after setup)")
    table.add_row("logs", f"{summary.run_dir / 'logs'} (tensorboard --logdir {summary.run_dir / 'logs'})")
    if summary.checkpoint is not None:
        table.add_row("checkpoint", str(summary.checkpoint))
    if summary.video is not None:
        table.add_row("video", str(summary.video))
    console.print(table)


def _interruptible() -> None:
    """Ctrl-C, and the SIGINT a sweep passes on, stop the run (it closes its envs and keeps its checkpoints) even
    when it started with SIGINT ignored (a background job of a non-interactive shell) or blocked (a mask inherited
    from the parent): the run would go on to its end while the sweep waited to kill it."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a mask, unlike a handler, survives exec


def run(args: argparse.Namespace) -> int:
    from vla_rl.config.loader import load_config

    _interruptible()

    recipe, overrides = split_recipe_args(args.args)
    config = load_config(recipe, overrides)
    from placement.torchrun import start_ranks, stop_ranks

    started = start_ranks(config, args.args)
    try:
        return _train(config, args)
    finally:
        if started:
            stop_ranks()


def _train(config, args: argparse.Namespace) -> int:
    import torch.distributed as dist

    from vla_rl.runner.loop import Runner

    is_main = not dist.is_initialized() or dist.get_rank() == 0
    console = Console(quiet=not is_main)

    warm = None
    if config.warmstart.enabled and not config.runner.resume:  # demos -> SFT; RL then starts from the SFT policy
        from pathlib import Path

        from placement.torchrun import on_main_rank
        from vla_rl.sft.warmstart import warm_start

        def warm_up():
            nonlocal warm
            rl_config, warm = warm_start(config, Path(config.runner.output_dir) / config.runner.name, console,
                                         progress=not args.no_progress)
            return rl_config

        config = on_main_rank(warm_up)  # (data-parallel: rank 0 warms up, the others start from its SFT policy)
    runner = Runner(config, console=console, progress=not args.no_progress)
    try:
        summary = runner.run()
        spec = runner.env.spec
    finally:
        runner.close()
    if is_main:
        print_summary(console, summary)
        report_run(console, config, summary, spec, warm)
    return 0


def report_run(console: Console, config, summary, spec, warm) -> None:
    """Evaluation records, manifests and the run report (initial vs final, McNemar, learning curve)."""
    from vla_rl.eval.report import rate_cell, write_run_report

    labels = ("SFT", "SFT + RL") if warm is not None else ("before RL", "after RL")
    path, comparison = write_run_report(summary.run_dir, config, summary.initial_eval, summary.final_eval,
                                        summary.checkpoint, spec, labels)
    if comparison is not None:
        console.print(f"[bold]{labels[0]}[/bold] {rate_cell(comparison.successes_a, comparison.n)}  ->  "
                      f"[bold]{labels[1]}[/bold] {rate_cell(comparison.successes_b, comparison.n)}")
        console.print(f"  {comparison.verdict()}")
    console.print(f"report: {path} (and report.html)")


COMMANDS.register("train")(Command(help="train a policy with RL (default: the quickstart recipe)",
                                   add_arguments=add_arguments, run=run))


def main(argv: list[str] | None = None) -> int:
    """`python -m vla_rl.cli.train ...`: the same as `vla-rl train ...`."""
    return run_command("train", argv)


if __name__ == "__main__":
    sys.exit(main())
