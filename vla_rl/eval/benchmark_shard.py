"""Benchmark shards: a block of episodes run by one process with its own env workers and policy copy.

`run_shard(job)` builds the env (at most one worker per episode), loads the policy unless given,
and runs the shard's reset ids through `evaluate_policy`, the episode loop every evaluation uses,
with two observers: one writes each episode's record to the store the moment it ends (the resume
points), one keeps the first failure of each task as a video. Inside a shard the env workers each
take a contiguous, task-major block of ids (`manifest.protocol_order`), so a LIBERO worker rebuilds
its scene only when its block moves to the next task.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from vla_rl.config.env import EnvConfig
from vla_rl.eval.benchmark_protocol import BenchmarkProtocol
from vla_rl.eval.benchmark_settings import choose_unnorm_key
from vla_rl.eval.benchmark_store import EpisodeStore
from vla_rl.eval.episodes import EpisodeObserver


@dataclass(frozen=True)
class ShardJob:
    """One shard: these reset ids of `protocol`, on `env` (num_envs workers), records into `out_dir`."""

    policy_dir: str
    env: EnvConfig
    protocol: BenchmarkProtocol
    reset_ids: tuple[int, ...]
    out_dir: str
    policy_sha256: str
    unnorm_key: str | None
    video: bool
    progress: bool
    device: str = "auto"
    """`placement.device`: "auto" puts the policy on CUDA when this process sees a GPU, "cpu" never."""


def load_benchmark_policy(policy_dir: str, suite: str, unnorm_key: str | None, device: str = "auto") -> Any:
    """The checkpoint's policy, decoding for LIBERO's gripper convention and the suite's statistics, on
    CUDA when `device` allows it and this process sees a GPU."""
    import torch

    from simulators.libero_suites import GRIPPER_CONVENTION
    from vla_rl.models.registry import load_policy

    policy = load_policy(policy_dir)
    policy.eval()
    policy.set_action_decoding(gripper_convention=GRIPPER_CONVENTION,
                               unnorm_key=choose_unnorm_key(policy.norm_stats, suite, unnorm_key))
    if device != "cpu" and torch.cuda.is_available():
        policy.to("cuda")
    return policy


class _Recorder(EpisodeObserver):
    """Writes each finished episode to the store as it ends (the resume points)."""

    def __init__(self, store: EpisodeStore) -> None:
        self.store = store

    def ended(self, env_index: int, reset_id: int, success: bool, episode_return: float, length: int) -> None:
        self.store.write(reset_id, success, episode_return, length)


class _Observers(EpisodeObserver):
    """Several `EpisodeObserver`s behind one."""

    def __init__(self, *observers: Any) -> None:
        self.observers = [o for o in observers if o is not None]

    def started(self, *args: Any) -> None:
        for o in self.observers:
            o.started(*args)

    def stepped(self, *args: Any) -> None:
        for o in self.observers:
            o.stepped(*args)

    def ended(self, *args: Any) -> None:
        for o in self.observers:
            o.ended(*args)


def run_shard(job: ShardJob, policy: Any = None) -> dict[str, Any]:
    """Run a shard's episodes (each recorded as it ends); returns counts and timing."""
    from simulators.registry import make_env
    from vla_rl.eval.benchmark_video import FailureVideos, task_videos
    from vla_rl.eval.episodes import evaluate_policy

    protocol, out = job.protocol, Path(job.out_dir)
    if policy is None:
        policy = load_benchmark_policy(job.policy_dir, protocol.suite, job.unnorm_key, job.device)
    store = EpisodeStore(out, protocol, job.policy_sha256).open()
    env_cfg = replace(job.env, num_envs=max(1, min(job.env.num_envs, len(job.reset_ids))), auto_reset=False)
    start = time.perf_counter()
    with make_env(env_cfg) as env:
        videos = None
        if job.video:
            videos = FailureVideos(out, protocol.task_of, env.spec.control_hz / policy.action_chunk,
                                   have=set(task_videos(out)))
        order = task_major_order(protocol, job.reset_ids, env.num_envs)
        result = evaluate_policy(env, policy, order, mode=protocol.decoding, temperature=protocol.temperature or 1.0,
                                 progress=job.progress, observer=_Observers(_Recorder(store), videos))
    return {"episodes": len(result.successes), "env_steps": result.env_steps, "seconds": time.perf_counter() - start,
            "num_envs": env_cfg.num_envs}


def task_major_order(protocol: BenchmarkProtocol, ids: Sequence[int], num_envs: int) -> list[int]:
    """`ids` ordered so that env i of `num_envs` runs one contiguous block sorted by (task, init state)."""
    from vla_rl.eval.manifest import shard_order

    return shard_order(ids, num_envs, key=lambda r: (protocol.task_of(r), protocol.state_of(r)))


def run_in_process(jobs: Sequence[ShardJob], policy: Any = None) -> list[dict[str, Any]]:
    """The local shard runner: every job in this process, one after the other."""
    return [run_shard(job, policy) for job in jobs]


__all__ = ["ShardJob", "load_benchmark_policy", "run_in_process", "run_shard", "task_major_order"]
