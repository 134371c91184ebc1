"""`vla-rl compare A B [key=value ...]`: paired comparison of two checkpoints on the same episodes.

A and B are checkpoints (run, checkpoints/ or checkpoint folders, or an SFT output), or evaluation
records (results.json or the folder holding it) to compare without re-running. Checkpoints are
evaluated on the same reset ids (each with its own config plus the overrides; the same env is reused
when both configs build the same one), then McNemar's exact test on the paired outcomes says whether
the difference is significant. Output in `--out`: A/ and B/ evaluations, comparison.json, report.md.

`--benchmark SUITE` evaluates both under the suite's official protocol (`vla-rl eval --benchmark`;
resumable in A/ and B/) and refuses two records whose protocols differ (image protocol, cameras,
episodes, decoding, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vla_rl.cli.commands import COMMANDS, Command, run_command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", help="baseline: checkpoint, run folder, or results.json / eval folder")
    parser.add_argument("b", help="candidate: checkpoint, run folder, or results.json / eval folder")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for both evaluations")
    parser.add_argument("--out", default=None, help="output folder (default: ./compare/<A>_vs_<B>)")
    parser.add_argument("--protocol", choices=("benchmark", "config"), default="benchmark",
                        help="which episodes (see `vla-rl eval --help`)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    parser.add_argument("--benchmark", default=None, metavar="SUITE", help="compare under a benchmark suite's protocol")
    parser.add_argument("--num-envs", type=int, default=None, help="--benchmark: env workers per shard")
    parser.add_argument("--tasks", default=None, help="--benchmark: only these task indices (PARTIAL)")
    parser.add_argument("--init-states", type=int, default=None, help="--benchmark: first K init states (PARTIAL)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _is_record(path: Path) -> bool:
    return (path.is_file() and path.suffix == ".json") or (path / "results.json").is_file()


def _label(path: Path) -> str:
    parts = [p for p in path.resolve().parts if p not in ("checkpoints", "policy", "eval", "results.json")]
    return "/".join(parts[-2:])


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from rich.console import Console

    from simulators.registry import make_env
    from vla_rl.checkpoints import resolve_checkpoint
    from vla_rl.cli.evaluate import evaluate_checkpoint
    from vla_rl.config.loader import load_config
    from vla_rl.eval.compare import compare_records, load_record
    from vla_rl.eval.report import write_report

    console = Console()
    paths = [Path(args.a), Path(args.b)]
    labels = [_label(p) for p in paths]
    if labels[0] == labels[1]:
        labels = [f"A ({labels[0]})", f"B ({labels[1]})"]
    out = Path(args.out) if args.out else Path("compare") / f"{paths[0].resolve().name}_vs_{paths[1].resolve().name}"
    records, env, env_cfg = [], None, None
    try:
        for path, sub in zip(paths, ("A", "B")):
            if _is_record(path):
                records.append(load_record(path))
                continue
            if args.benchmark is not None:
                from placement.eval_shards import shard_runner_for
                from vla_rl.eval.benchmark import evaluate_benchmark

                records.append(evaluate_benchmark(path, args.benchmark, out / sub, args.overrides, args.num_envs,
                                                  args.tasks, args.init_states, progress=not args.no_progress,
                                                  console=console, shard_runner=shard_runner_for))
                continue
            cfg = load_config(str(resolve_checkpoint(path) / "config.yaml"), args.overrides).env
            if env is not None and cfg != env_cfg:
                env.close()
                env = None
            if env is None:
                env, env_cfg = make_env(replace(cfg, auto_reset=False)), cfg
            records.append(evaluate_checkpoint(path, args.overrides, out / sub, args.protocol,
                                               progress=not args.no_progress, console=console, env=env))
    finally:
        if env is not None:
            env.close()
    try:
        comparison = compare_records(records[0], records[1], labels[0], labels[1], alpha=args.alpha)
    except ValueError as exc:
        print(f"vla-rl compare: {exc}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(json.dumps(comparison.to_dict(), indent=2) + "\n")
    manifest_path = out / "B" / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else None
    write_report(out, records[1], manifest, comparison=comparison, title=f"{labels[1]} vs {labels[0]}")
    from vla_rl.eval.report import rate_cell

    console.print(f"A {labels[0]}: {rate_cell(comparison.successes_a, comparison.n)}")
    console.print(f"B {labels[1]}: {rate_cell(comparison.successes_b, comparison.n)}")
    console.print(f"{comparison.verdict()}; report: {out / 'report.md'}")
    return 0


COMMANDS.register("compare")(Command(help="compare two checkpoints on the same episodes (McNemar's exact test)",
                                     add_arguments=add_arguments, run=run))


def main(argv: list[str] | None = None) -> int:
    """`python -m vla_rl.cli.compare ...`: the same as `vla-rl compare ...`."""
    return run_command("compare", argv)


if __name__ == "__main__":
    sys.exit(main())
