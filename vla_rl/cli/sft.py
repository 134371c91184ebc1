"""`vla-rl sft [RECIPE] [key=value ...] --out DIR [--demos DIR] [--eval]`: supervised fine-tuning on demos.

Trains the recipe's `model` on demonstrations (`--demos`, else `warmstart.demos_dir`, else new
scripted demos generated into `<out>/demos`) with the `warmstart` SFT settings, and saves
`<out>/policy` (load it with `model.pretrained=<out>/policy`), `<out>/config.yaml` and `<out>/sft.json`.
With `--eval` the SFT policy is then evaluated on the recipe's evaluation seeds into `<out>/eval/`
(results, manifest and report, as `vla-rl eval` writes them).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from vla_rl.cli.commands import COMMANDS, Command, add_recipe_arguments, run_command, split_recipe_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recipe_arguments(parser)
    parser.add_argument("--out", required=True, help="output folder (policy/, config.yaml, sft.json)")
    parser.add_argument("--demos", default=None, help="demo folder from `vla-rl demos` (default: warmstart.demos_dir, "
                        "else generate warmstart.demos new ones into <out>/demos)")
    parser.add_argument("--eval", action="store_true", help="evaluate the SFT policy on runner.eval_episodes seeds")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from vla_rl.config.loader import load_config
    from vla_rl.demos.format import load_demos
    from vla_rl.sft.warmstart import check_demos_match, make_demos, run_sft

    recipe, overrides = split_recipe_args(args.args)
    config = load_config(recipe, overrides)
    console = Console()
    out = Path(args.out)
    progress = not args.no_progress
    demos_dir = args.demos or config.warmstart.demos_dir
    if demos_dir is not None:
        demos = load_demos(demos_dir)
    else:
        demos, stats = make_demos(config, out / "demos", progress)
        console.print(f"generated {stats.successes} demos in {stats.seconds:.0f} s")
    check_demos_match(config, demos)
    config = replace(config, warmstart=config.warmstart.reading(str(demos.root)))
    _, result = run_sft(config, demos, out, progress)
    s = result.summary()
    console.print(f"[bold]SFT[/bold] {config.model.family}/{config.model.size} on {len(demos)} demos "
                  f"({s['train_samples']} train / {s['holdout_samples']} held-out steps), {s['steps']} steps in "
                  f"{s['seconds']:.0f} s")
    if s["holdout_loss_final"] is not None:
        console.print(f"  held-out loss {s['holdout_loss_initial']:.3f} -> {s['holdout_loss_final']:.3f}; greedy action "
                      f"L1 {s['holdout_action_l1_initial']:.3f} -> {s['holdout_action_l1_final']:.3f}")
    console.print(f"  policy: {out / 'policy'} (model.pretrained={out / 'policy'})")
    if args.eval:
        from vla_rl.cli.evaluate import evaluate_checkpoint

        evaluate_checkpoint(out, [], out / "eval", protocol="config", progress=progress, console=console)
    return 0


COMMANDS.register("sft")(Command(help="supervised fine-tuning of a policy on demonstrations",
                                 add_arguments=add_arguments, run=run))


def main(argv: list[str] | None = None) -> int:
    """`python -m vla_rl.cli.sft ...`: the same as `vla-rl sft ...`."""
    return run_command("sft", argv)


if __name__ == "__main__":
    sys.exit(main())
