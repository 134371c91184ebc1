"""`vla-rl plan [RECIPE] [key=value ...]`: print where each component would run, without running it.

Shows the cluster detected (or described by placement.num_devices), the mode that follows from the
placement's device sets, worker counts, pipeline stages, offloading and weight sync; `--json` prints
the same plan as JSON. An invalid placement exits with code 2 and a message saying what to change.
"""

from __future__ import annotations

import argparse
import json

from vla_rl.cli.commands import COMMANDS, Command, add_recipe_arguments, split_recipe_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recipe_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")


def run(args: argparse.Namespace) -> int:
    from placement.registry import plan_for
    from vla_rl.config.loader import load_config

    recipe, overrides = split_recipe_args(args.args)
    plan = plan_for(load_config(recipe, overrides))  # backend=ray: connects to (or starts) Ray to read its devices
    print(json.dumps(plan.to_dict(), indent=2) if args.json else plan.describe())
    return 0


COMMANDS.register("plan")(Command(help="print the placement plan of a recipe (devices, mode, stages) without running it",
                                  add_arguments=add_arguments, run=run))
