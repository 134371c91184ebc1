"""`vla-rl demos [RECIPE] [key=value ...] --out DIR`: generate scripted demonstrations.

The recipe's `env` section says which task and observations (cameras, image size: use the policy's
resolution); `warmstart.demos` how many successful episodes and `warmstart.demo_seed` the first reset
id. Output: a demo folder (index.json + episodes/*.npz, see vla_rl/demos/format.py) that
`vla-rl sft --demos DIR` and `warmstart.demos_dir=DIR` read.
"""

from __future__ import annotations

import argparse
import sys

from vla_rl.cli.commands import COMMANDS, Command, add_recipe_arguments, run_command, split_recipe_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recipe_arguments(parser)
    parser.add_argument("--out", required=True, help="new folder for the demos (must not hold demos yet)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from vla_rl.config.loader import load_config
    from vla_rl.demos.scripted import SCRIPTED_CONTROLLERS
    from vla_rl.sft.warmstart import make_demos

    recipe, overrides = split_recipe_args(args.args)
    config = load_config(recipe, overrides)
    console = Console()
    key = f"{config.env.backend}/{config.env.task}"
    if key not in SCRIPTED_CONTROLLERS:
        print(f"vla-rl demos: no scripted controller for {key}; scripted tasks: {', '.join(SCRIPTED_CONTROLLERS.names())}",
              file=sys.stderr)
        return 2
    demos, stats = make_demos(config, args.out, progress=not args.no_progress)
    console.print(f"[bold]{key}[/bold]: {stats.successes} demos ({demos.num_steps} steps, mean length "
                  f"{demos.num_steps / max(len(demos), 1):.1f}) from {stats.attempts} attempts "
                  f"({stats.success_rate:.0%} solved) in {stats.seconds:.0f} s -> {args.out}/index.json")
    return 0


COMMANDS.register("demos")(Command(help="generate scripted demonstrations of a task (for SFT)",
                                   add_arguments=add_arguments, run=run))


def main(argv: list[str] | None = None) -> int:
    """`python -m vla_rl.cli.demos ...`: the same as `vla-rl demos ...`."""
    return run_command("demos", argv)


if __name__ == "__main__":
    sys.exit(main())
