"""`vla-rl eval CHECKPOINT [key=value ...]`: evaluate a saved policy on its run's environment.

The checkpoint's own config.yaml (written by `vla-rl train` or `vla-rl sft`) supplies the
environment; overrides change it (e.g. `runner.eval_episodes=50 env.num_envs=8`). The episodes follow
`--protocol`: "benchmark" (default) is the backend's official protocol (LIBERO: every task's 50
fixed init states, sharded over the env workers so that each runs every episode once), "config"
the run's `runner.eval_seed`/`runner.eval_episodes` seeds. Results go to `<checkpoint>/eval/`:
results.json, manifest.json (versions, renderer, ids, decoding, hashes) and report.md/.html.

`--benchmark SUITE` (libero_spatial, ..., libero_130) runs the suite's official protocol instead, on
any checkpoint that acts in LIBERO, a published policy folder included: every task x its 50 init
states once, resumable, sharded over env workers (and Ray with placement.backend=ray), a per-task
table with Wilson intervals and the suite mean, one failure video per task (`vla_rl/eval/benchmark.py`).
`--tasks` and `--init-states` reduce it for smoke runs; the result is then recorded as PARTIAL.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console

from vla_rl.cli.commands import COMMANDS, Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="checkpoint folder, checkpoints/ folder, or run folder")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    parser.add_argument("--out", default=None, help="output folder (default: <checkpoint>/eval)")
    parser.add_argument("--protocol", choices=("benchmark", "config"), default="benchmark",
                        help="benchmark: the backend's official episodes (LIBERO: 50 init states per task); "
                        "config: runner.eval_seed + runner.eval_episodes seeds")
    parser.add_argument("--video", action="store_true", help="record the first episode to mp4")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    bench = parser.add_argument_group("benchmark protocol (--benchmark)")
    bench.add_argument("--benchmark", default=None, metavar="SUITE",
                       help="run a benchmark suite's official protocol (libero_spatial, libero_object, libero_goal, "
                       "libero_10, libero_90, libero_130); output default <checkpoint>/benchmark/<SUITE>; rerun to resume")
    bench.add_argument("--num-envs", type=int, default=None, help="env workers per shard (default: one per CPU core)")
    bench.add_argument("--tasks", default=None, help="only these task indices, e.g. 0,3-5 (recorded as PARTIAL)")
    bench.add_argument("--init-states", type=int, default=None,
                       help="only the first K of the 50 init states per task (recorded as PARTIAL)")
    bench.add_argument("--no-failure-videos", action="store_true", help="do not write one failure video per task")


def evaluate_checkpoint(checkpoint: str | Path, overrides: Sequence[str] = (), out_dir: str | Path | None = None,
                        protocol: str = "benchmark", video: bool = False, progress: bool = True,
                        console: Console | None = None, env: Any = None) -> dict[str, Any]:
    """Evaluate one checkpoint and write results, manifest and report; returns the results record.
    `env` (auto-reset off) is reused when given, e.g. to evaluate two checkpoints on one env."""
    from dataclasses import replace

    from simulators.registry import make_env
    from vla_rl.checkpoints import resolve_checkpoint
    from vla_rl.config.loader import load_config
    from vla_rl.eval.episodes import evaluate_policy, format_rate
    from vla_rl.eval.manifest import eval_protocol, protocol_order
    from vla_rl.eval.report import run_logs, write_evaluation
    from vla_rl.models.registry import load_policy

    console = console or Console()
    checkpoint = resolve_checkpoint(checkpoint)
    config = load_config(str(checkpoint / "config.yaml"), list(overrides))
    out_dir = Path(out_dir) if out_dir else checkpoint / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    policy = load_policy(str(checkpoint / "policy"))
    policy.eval()
    plan = eval_protocol(config, protocol)
    own_env = env is None
    env = make_env(replace(config.env, auto_reset=False)) if own_env else env
    writer = None
    try:
        sink = None
        if video:
            from simulators.video import EpisodeVideo

            writer = EpisodeVideo(str(out_dir / "episode-0.mp4"), fps=env.spec.control_hz)
            sink = writer.add
        ids = protocol_order(plan, env.num_envs)
        result = evaluate_policy(env, policy, ids, mode=config.rollout.eval_mode,
                                 temperature=config.rollout.eval_temperature, frame_sink=sink, progress=progress)
        spec = env.spec
    finally:
        if writer is not None:
            writer.close()
        if own_env:
            env.close()
    rl_rows, sft_rows = run_logs(checkpoint)
    record = write_evaluation(out_dir, result, config, plan, checkpoint, spec, rl_rows, sft_rows)
    console.print(f"[bold]{config.env.task}[/bold] success {format_rate(result.successes)} "
                  f"in {result.seconds:.1f} s ({plan.name} protocol); results: {out_dir / 'results.json'}, "
                  f"report: {out_dir / 'report.md'}")
    return record


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """`--benchmark`: the suite's protocol on the checkpoint, shards placed by `placement.backend`."""
    from placement.eval_shards import shard_runner_for
    from vla_rl.eval.benchmark import evaluate_benchmark

    return evaluate_benchmark(args.checkpoint, args.benchmark, args.out, args.overrides, num_envs=args.num_envs,
                              tasks=args.tasks, init_states=args.init_states, video=not args.no_failure_videos,
                              progress=not args.no_progress, shard_runner=shard_runner_for)


def run(args: argparse.Namespace) -> int:
    if args.benchmark is not None:
        run_benchmark(args)
        return 0
    evaluate_checkpoint(args.checkpoint, args.overrides, args.out, args.protocol, args.video, not args.no_progress)
    return 0


COMMANDS.register("eval")(Command(help="evaluate a checkpoint (success rate with a 95%% interval, manifest, report)",
                                  add_arguments=add_arguments, run=run))
