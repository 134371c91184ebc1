"""Entry point of the `vla-rl` console script: parses the sub-command and turns config errors
into one-line messages (exit code 2) instead of tracebacks."""

from __future__ import annotations

import argparse
import sys

from vla_rl.cli.commands import COMMANDS
from vla_rl.config.core import ConfigError

# Importing a command module registers it.
COMMAND_MODULES = ("train", "evaluate", "sft", "demos", "compare", "report", "sweep", "plan", "serve", "info")


def _load_commands() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"vla_rl.cli.{name}")


def build_parser() -> argparse.ArgumentParser:
    _load_commands()
    parser = argparse.ArgumentParser(prog="vla-rl", description="RL fine-tuning of vision-language-action policies.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        command = COMMANDS.get(name)
        command.add_arguments(sub.add_parser(name, help=command.help, description=command.help))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse stops filling `[RECIPE] [key=value ...]` at the first flag; overrides after a flag
    # (`vla-rl train RECIPE --no-progress runner.iterations=2`) belong to them too.
    overrides = [a for a in extra if "=" in a and not a.startswith("-")]
    if overrides and isinstance(getattr(args, "args", None), list):
        args.args.extend(overrides)
        extra = [a for a in extra if a not in overrides]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return COMMANDS.get(args.command).run(args)
    except ConfigError as exc:
        print(f"vla-rl {args.command}: config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vla-rl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
