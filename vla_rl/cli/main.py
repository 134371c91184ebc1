"""Entry point of the `vla-rl` console script: parses the sub-command and turns config errors
into one-line messages (exit code 2) instead of tracebacks."""

from __future__ import annotations

import argparse
import sys

from vla_rl.cli.commands import COMMANDS, execute, parse_command_line

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
    args = parse_command_line(parser, argv)
    return execute(args.command, args)


if __name__ == "__main__":
    sys.exit(main())
