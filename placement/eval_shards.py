"""Where the shards of a benchmark evaluation run (`vla-rl eval --benchmark`): in this process
(`placement.backend=local`, one shard), or one Ray task per device of the Ray cluster
(`placement.backend=ray`: a GPU each on a GPU cluster, a CPU slot each otherwise; at most one shard
per remaining episode). Each Ray shard builds its own env workers and policy copy and writes its
episode records into the shared output folder, so the cluster needs a file system the driver sees
(one machine, or a shared mount).
"""

from __future__ import annotations

from typing import Any, Sequence

from vla_rl.eval.benchmark import LocalShards
from vla_rl.eval.benchmark_shard import ShardJob, run_shard
from vla_rl.registry import Registry

SHARD_RUNNERS: Registry[Any] = Registry("benchmark shard runner (placement.backend)")
SHARD_RUNNERS.register("local")(lambda cfg: LocalShards())


@SHARD_RUNNERS.register("ray")
class RayShards:
    """One Ray task per shard, each on one device of the connected (or started) Ray cluster."""

    def __init__(self, cfg: Any) -> None:
        from placement.ray_backend import ray_cluster

        self.cluster = ray_cluster(cfg)

    def count(self, episodes: int) -> int:
        return max(1, min(self.cluster.count, episodes))

    def run(self, jobs: Sequence[ShardJob], policy: Any = None) -> list[dict[str, Any]]:
        import ray

        resources = {"num_gpus": 1} if self.cluster.kind == "gpu" else {"num_cpus": 1}
        task = ray.remote(run_shard).options(**resources)
        return ray.get([task.remote(job) for job in jobs])


def shard_runner_for(cfg: Any) -> Any:
    """The shard runner of `placement.backend`."""
    return SHARD_RUNNERS.get(cfg.backend)(cfg)


__all__ = ["RayShards", "SHARD_RUNNERS", "shard_runner_for"]
