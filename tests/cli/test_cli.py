"""The `vla-rl` command line: sub-command registry and `info` probes on this machine."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vla_rl.cli.main import build_parser


def test_every_registered_command_parses_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"train", "eval", "info", "serve", "plan", "sft", "demos", "compare", "report", "sweep"} <= set(sub.choices)
    assert "train" in parser.format_help()
    for name, command_parser in sub.choices.items():
        assert command_parser.format_help(), name


def test_info_reports_working_renderers_and_simulators():
    proc = subprocess.run([sys.executable, "-m", "vla_rl.cli.main", "info"], capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = {line.strip().split("  ")[0]: line for line in proc.stdout.splitlines() if line.startswith("  ")}
    for probe in ("vulkan (SAPIEN)", "egl (MuJoCo)", "simulator maniskill", "simulator libero"):
        assert probe in lines and "FAILED" not in lines[probe], proc.stdout
    assert "10 libero_spatial tasks" in lines["simulator libero"], proc.stdout  # LIBERO's own benchmark answered
    assert "torch" in lines and "not installed" not in lines["torch"]


def test_overrides_after_a_flag_still_apply(capsys):
    from vla_rl.cli.main import main

    # `placement.pipeline_stages=3` does not divide 4 envs: the plan must refuse it, which it can only
    # do if the override after `--json` reached the config.
    assert main(["plan", "quickstart_ppo", "--json", "env.num_envs=4", "placement.pipeline_stages=3"]) == 2
    assert "pipeline_stages" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["plan", "quickstart_ppo", "--no-such-flag"])


@pytest.mark.parametrize("command", [["eval", "CKPT", "--no-progress"], ["compare", "A", "B", "--no-progress"]])
def test_checkpoint_commands_take_overrides_after_a_flag(command):
    from vla_rl.cli.commands import parse_command_line

    args = parse_command_line(build_parser(), [*command, "rollout.eval_mode=sample", "runner.eval_episodes=4"])
    assert args.overrides == ["rollout.eval_mode=sample", "runner.eval_episodes=4"]
    assert args.no_progress
