"""Registry of `vla-rl` sub-commands. Each command module registers a `Command` here."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

from vla_rl.registry import Registry


@dataclass(frozen=True)
class Command:
    help: str
    """One line shown in `vla-rl --help`."""
    add_arguments: Callable[[argparse.ArgumentParser], None]
    """Declares the command's arguments."""
    run: Callable[[argparse.Namespace], int]
    """Runs the command; returns the process exit code."""


COMMANDS: Registry[Command] = Registry("command")


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The shared `[RECIPE] [key=value ...]` arguments of commands that take a run config."""
    parser.add_argument(
        "args",
        nargs="*",
        metavar="[RECIPE] [key=value ...]",
        help="a recipe (file, or name under configs/; default: quickstart) then overrides such as "
        "algorithm.clip_ratio=0.2",
    )


def split_recipe_args(args: list[str]) -> tuple[str | None, list[str]]:
    """(recipe or None, overrides) from the positional arguments."""
    if args and "=" not in args[0]:
        return args[0], args[1:]
    return None, list(args)


def run_command(name: str, argv: list[str] | None = None) -> int:
    """`python -m vla_rl.cli.<name> ARGS` (what torchrun starts on each rank): `vla-rl <name> ARGS`,
    with the same parsing and error handling."""
    import sys

    from vla_rl.cli.main import main

    return main([name, *(sys.argv[1:] if argv is None else argv)])
