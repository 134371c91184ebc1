"""`vla-rl eval CHECKPOINT --benchmark SUITE`: a checkpoint under a benchmark's official protocol.

    settings   `benchmark_settings`: LIBERO, the suite, the policy's cameras; the image protocol and
               size of the checkpoint's own LIBERO run, else the published evaluations' `openvla` at
               224 px; decoding and placement; then `key=value` overrides;
    protocol   `benchmark_protocol.make_protocol`: every task x its 50 init states once, the suite's
               settle steps and step limits (a reduced one is recorded as PARTIAL);
    store      `benchmark_store.EpisodeStore`: the output folder holds one atomic record per finished
               episode, so a killed evaluation resumes without rerunning any of them;
    shards     the remaining episodes in task-major blocks, one shard in this process or one per
               device over Ray (`placement/eval_shards.py` when `placement.backend=ray`), each run by
               `benchmark_shard.run_shard` through `evaluate_policy` (the shared episode loop);
    outputs    `benchmark_report.write_outputs`: results.json with the per-task table (Wilson 95%)
               and the suite mean, manifest.json, report.md/html, one failure video per task.

The output folder defaults to `<checkpoint>/benchmark/<suite>` (a policy folder of its own, such as a
published checkpoint, writes to `./benchmark/<folder name>/<suite>`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

from vla_rl.eval.benchmark_protocol import check_suite, make_protocol, parse_task_selection, suite_task_names
from vla_rl.eval.benchmark_settings import benchmark_settings, check_policy_fits, locate_policy
from vla_rl.eval.benchmark_shard import ShardJob, load_benchmark_policy, run_in_process, task_major_order
from vla_rl.eval.benchmark_store import EpisodeStore


class LocalShards:
    """The default shard runner: one shard, in this process."""

    def count(self, episodes: int) -> int:
        return 1

    def run(self, jobs: Sequence[ShardJob], policy: Any) -> list[dict[str, Any]]:
        return run_in_process(jobs, policy)


def default_out_dir(checkpoint: Path, policy_dir: Path, run_config: Path | None, suite: str) -> Path:
    if run_config is not None or policy_dir.name == "policy":
        return policy_dir.parent / "benchmark" / suite
    return Path("benchmark") / checkpoint.resolve().name / suite


def split_blocks(protocol: Any, ids: Sequence[int], shards: int) -> list[tuple[int, ...]]:
    """`ids` in task-major order cut into `shards` contiguous blocks (sizes differ by at most one)."""
    from vla_rl.eval.manifest import shard_ids

    ordered = task_major_order(protocol, ids, 1)
    rank = {r: i for i, r in enumerate(ordered)}
    return [tuple(ordered[i] for i in block) for block in shard_ids([rank[r] for r in ordered], shards) if block]


def evaluate_benchmark(checkpoint: str | Path, suite: str, out_dir: str | Path | None = None,
                       overrides: Sequence[str] = (), num_envs: int | None = None, tasks: str | None = None,
                       init_states: int | None = None, video: bool = True, progress: bool = True,
                       console: Any = None, shard_runner: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """Run (or resume) the benchmark protocol of `suite` on a checkpoint; returns the results record.
    `shard_runner(placement_config)` gives the object that runs shard jobs (default: `LocalShards`)."""
    from rich.console import Console

    from vla_rl.eval.benchmark_report import print_summary, write_outputs
    from vla_rl.eval.benchmark_video import keep_one_video_per_task
    from vla_rl.eval.manifest import sha256_tree

    console = console or Console()
    check_suite(suite)
    checkpoint = Path(checkpoint)
    policy_dir, run_config = locate_policy(checkpoint)
    settings = benchmark_settings(suite, ("main",), run_config, overrides, num_envs)  # checks the overrides early
    policy = load_benchmark_policy(str(policy_dir), suite, settings.model.unnorm_key, settings.placement.device)
    settings = benchmark_settings(suite, policy.cameras, run_config, overrides, num_envs)
    check_policy_fits(policy, settings.env, policy_dir)
    names = suite_task_names(suite)
    protocol = make_protocol(suite, settings.env, settings.rollout.eval_mode, settings.rollout.eval_temperature,
                             tasks=parse_task_selection(tasks, len(names)), init_states=init_states, task_names=names)
    out = Path(out_dir) if out_dir else default_out_dir(checkpoint, policy_dir, run_config, suite)
    policy_sha = sha256_tree(policy_dir)
    store = EpisodeStore(out, protocol, policy_sha).open()
    done = store.done()
    remaining = [r for r in protocol.reset_ids() if r not in done]
    console.print(f"[bold]{suite}[/bold]: {protocol.describe()}; {len(done)} of {len(protocol.reset_ids())} "
                  f"episodes already in {out}" + ("" if remaining else ", nothing left to run"))
    start = time.perf_counter()
    shards: list[dict[str, Any]] = []
    if remaining:
        runner = (shard_runner or (lambda cfg: LocalShards()))(settings.placement)
        blocks = split_blocks(protocol, remaining, runner.count(len(remaining)))
        jobs = [ShardJob(policy_dir=str(policy_dir), env=settings.env, protocol=protocol, reset_ids=block,
                         out_dir=str(out), policy_sha256=policy_sha, unnorm_key=settings.model.unnorm_key,
                         video=video, progress=progress and len(blocks) == 1, device=settings.placement.device)
                for block in blocks]
        shards = runner.run(jobs, policy)
    if video:
        keep_one_video_per_task(out)
    record = write_outputs(out, protocol, store.done(), settings, policy_dir, run_config, shards,
                           time.perf_counter() - start)
    print_summary(console, protocol, record, out)
    return record


__all__ = ["LocalShards", "default_out_dir", "evaluate_benchmark", "split_blocks"]
