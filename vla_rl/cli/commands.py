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


OVERRIDE_POSITIONALS = ("args", "overrides")
"""Names of the `nargs="*"` positionals that collect `key=value` overrides."""


def parse_command_line(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """`parser.parse_args(argv)`, except that `key=value` overrides after a flag still count as
    overrides (`vla-rl train RECIPE --no-progress runner.iterations=2`): argparse stops filling a
    `[RECIPE] [key=value ...]` positional at the first flag."""
    args, extra = parser.parse_known_args(argv)
    overrides = [a for a in extra if "=" in a and not a.startswith("-")]
    target = next((getattr(args, n) for n in OVERRIDE_POSITIONALS if isinstance(getattr(args, n, None), list)), None)
    if overrides and target is not None:
        target.extend(overrides)
        extra = [a for a in extra if a not in overrides]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def execute(name: str, args: argparse.Namespace) -> int:
    """Run command `name`; a config error becomes one line on stderr and exit code 2."""
    import sys

    from vla_rl.config.core import ConfigError

    try:
        return COMMANDS.get(name).run(args)
    except ConfigError as exc:
        print(f"vla-rl {name}: config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vla-rl {name}: interrupted", file=sys.stderr)
        return 130


def run_command(name: str, argv: list[str] | None = None) -> int:
    """`python -m vla_rl.cli.<name> ARGS` (what torchrun starts on each rank) as `vla-rl <name> ARGS`.

    Parses with the command's own parser: the module that runs as `__main__` has registered the
    command already, and importing every command module (as `vla-rl` does) would register it twice."""
    command = COMMANDS.get(name)
    parser = argparse.ArgumentParser(prog=f"vla-rl {name}", description=command.help)
    command.add_arguments(parser)
    return execute(name, parse_command_line(parser, argv))
