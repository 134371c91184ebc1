"""`vla-rl eval CHECKPOINT [key=value ...]`: evaluate a saved policy on its run's environment.

The checkpoint's own config.yaml (written by `vla-rl train`) supplies the environment; overrides
change it (e.g. `runner.eval_episodes=50 env.num_envs=8`). Results go to `<checkpoint>/eval/`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from vla_rl.cli.commands import COMMANDS, Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="checkpoint folder, checkpoints/ folder, or run folder")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    parser.add_argument("--out", default=None, help="output folder (default: <checkpoint>/eval)")
    parser.add_argument("--video", action="store_true", help="record the first episode to mp4")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from simulators.registry import make_env
    from vla_rl.config.loader import load_config
    from vla_rl.eval.episodes import evaluate_policy, format_rate, write_eval_record
    from vla_rl.models.registry import load_policy
    from vla_rl.checkpoints import resolve_checkpoint

    console = Console()
    checkpoint = resolve_checkpoint(args.checkpoint)
    config = load_config(str(checkpoint / "config.yaml"), args.overrides)
    out_dir = Path(args.out) if args.out else checkpoint / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    policy = load_policy(str(checkpoint / "policy"))
    policy.eval()
    env = make_env(replace(config.env, auto_reset=False))
    writer = None
    try:
        sink = None
        if args.video:
            from simulators.video import EpisodeVideo

            writer = EpisodeVideo(str(out_dir / "episode-0.mp4"), fps=env.spec.control_hz)
            sink = writer.add
        ids = [config.runner.eval_seed + i for i in range(config.runner.eval_episodes)]
        result = evaluate_policy(env, policy, ids, mode=config.rollout.eval_mode,
                                 temperature=config.rollout.eval_temperature, frame_sink=sink,
                                 progress=not args.no_progress)
    finally:
        if writer is not None:
            writer.close()
        env.close()
    write_eval_record(out_dir / "results.json", result, iteration=-1, env_steps=0, config=config)
    console.print(f"[bold]{config.env.task}[/bold] success {format_rate(result.successes)} "
                  f"in {result.seconds:.1f} s; results: {out_dir / 'results.json'}")
    return 0


COMMANDS.register("eval")(Command(help="evaluate a checkpoint (success rate with a 95% interval)",
                                  add_arguments=add_arguments, run=run))
