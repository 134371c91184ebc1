"""Data parallelism as a placement plan: one rank's share of a run under a distributed engine.

    torchrun --nproc-per-node 2 -m vla_rl.cli.train [RECIPE] placement.engine=fsdp2 [key=value ...]

Every rank runs the whole loop on its own share of the run: rank r gets envs [r*M, (r+1)*M) of
`env.num_envs` = N (M = N / ranks) in its own env workers, on its own device (CPU slot or GPU r),
with reset ids handed out as one process would (`placement/rank_env.py`). It rolls out with a plain
local copy of the policy (the replica, refreshed from the engine's gathered weights by
`sync_weights()`), so a rollout or an evaluation runs no collective inside a forward pass: a rank
whose episodes all ended may stop early without leaving the others waiting inside a sharded
forward. The learner evaluates with the engine's sharded module and the engine averages gradients
over ranks. What must agree does so through `Workers.comm` (`placement/collective.py`):
advantage-normalisation statistics, the step count of grouped episodes, KL early stopping, the
training budget, gathered episode statistics and evaluation results, `train/` metrics averaged
over ranks (min/max over all ranks; a std is the mean of the ranks' stds, not the whole batch's).
Only rank 0 writes logs, checkpoints and evaluation records; a checkpoint has the single-process
layout (the replica's `save_pretrained`, the name-keyed optimizer state, all N envs' replay log)
plus each rank's RNG streams.

`build_workers` (placement/registry.py) builds these workers whenever the engine is distributed;
the runner sees only the `Workers` interface.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

import torch

from placement.collective import ProcessGroup
from placement.rank_env import RankEnv
from placement.workers import Workers
from vla_rl.checkpoints import capture_rng, restore_rng
from vla_rl.config.core import ConfigError
from vla_rl.seeding import seed_everything


def local_config(config, comm: ProcessGroup, local_rank: int):
    """Rank `comm.rank`'s share of `config`: N / ranks envs (and env workers), the collocated plan on device
    `local_rank`. A ConfigError names what cannot split over the ranks."""
    p, env, world = config.placement, config.env, comm.world
    engine = f"placement.engine={p.engine}"
    if p.backend != "local":
        raise ConfigError(f"{engine} runs data-parallel ranks started by torchrun on the local backend; "
                          "set placement.backend=local", key="placement.backend")
    if p.pipeline_stages != 1:
        raise ConfigError(f"{engine}: each data-parallel rank runs the collocated plan; set "
                          "placement.pipeline_stages=1", key="placement.pipeline_stages")
    named = [k for k in ("env", "rollout", "actor") if str(getattr(p, k)) != "all"]
    if named:
        raise ConfigError(f"{engine}: rank r of a data-parallel run uses device r for env, rollout and actor; "
                          f"leave placement.{named[0]} at all", key=f"placement.{named[0]}")
    if env.num_envs % world:
        raise ConfigError(f"env.num_envs={env.num_envs} must split evenly over the {world} ranks; use a "
                          f"multiple of {world}", key="env.num_envs")
    num_envs = env.num_envs // world
    if config.algorithm.uses_groups and num_envs % config.algorithm.group_size:
        raise ConfigError(f"env.num_envs={env.num_envs} gives each of the {world} ranks {num_envs} envs, "
                          f"not whole groups of algorithm.group_size={config.algorithm.group_size}; use a "
                          f"multiple of {world * config.algorithm.group_size}", key="env.num_envs")
    if env.num_workers is not None and env.num_workers % world:
        raise ConfigError(f"env.num_workers={env.num_workers} must split evenly over the {world} ranks (or be "
                          "null)", key="env.num_workers")
    _check_device(config, local_rank)
    workers = None if env.num_workers is None else env.num_workers // world
    device = str(local_rank)
    return replace(config, env=replace(env, num_envs=num_envs, num_workers=workers),
                   placement=replace(p, env=device, rollout=device, actor=device))


def _check_device(config, local_rank: int) -> None:
    from placement.cluster import detect_cluster

    cluster = detect_cluster(config.placement)
    if local_rank >= cluster.count:
        noun = "GPUs" if cluster.kind == "gpu" else "CPU slots"
        raise ConfigError(f"rank {local_rank} of this node has no device: {cluster.source} gives "
                          f"{cluster.count} {noun}; start at most {cluster.count} ranks per node "
                          "(torchrun --nproc-per-node)", key="placement.engine")


@dataclass
class DataParallelWorkers(Workers):
    """A rank's workers: `policy` is the rollout replica (plain module, whole weights), `engine.policy` the
    sharded module being trained; `sync_weights()` refreshes the replica from the engine (collective)."""

    def _push_weights(self) -> None:
        self.policy.load_state_dict(self.engine.full_model_state())
        self.weights_version += 1

    def state_dict(self, generator: torch.Generator) -> dict[str, Any]:
        """The single-process entries plus every rank's RNG streams (collective)."""
        ranks = self.comm.gather({"rng": capture_rng(), "generator": generator.get_state()})
        return {**super().state_dict(generator), "rank_rng": ranks}

    def load_state_dict(self, extra: dict[str, Any], generator: torch.Generator) -> None:
        """Each rank's own RNG streams (when the checkpoint was written by as many ranks), and the weights the
        runner loaded into the replica, into the engine."""
        streams = extra.get("rank_rng")
        if streams is not None and len(streams) == self.comm.world:
            restore_rng(streams[self.comm.rank]["rng"])
            generator.set_state(streams[self.comm.rank]["generator"])
        super().load_state_dict(extra, generator)
        self.engine.load_model_state(self.policy.state_dict())


def build_data_parallel(config, build_local) -> DataParallelWorkers:
    """This rank's workers: `build_local(local config)` on its share, the env as a block of the run's envs,
    a rollout replica of the policy. Ranks other than 0 then sample with their own seed."""
    from vla_rl.engines.registry import require_process_group
    from vla_rl.models.registry import build_policy

    require_process_group(config.placement.engine)
    comm = ProcessGroup()
    local_rank = int(os.environ.get("LOCAL_RANK", comm.rank))
    local = local_config(config, comm, local_rank)
    workers = build_local(local)
    spec = workers.env.spec
    replica = build_policy(local.model, action_dim=spec.action_dim, cameras=spec.cameras,
                           proprio_dim=spec.proprio_dim, seed=local.runner.seed,
                           gripper_convention=spec.gripper_convention).to(workers.device)
    values = {f.name: getattr(workers, f.name) for f in fields(Workers) if f.init}
    num_envs = local.env.num_envs
    values.update(env=RankEnv(workers.env, comm, comm.rank * num_envs, num_envs * comm.world),
                  policy=replica, rollout=replica, comm=comm)
    parallel = DataParallelWorkers(**values)
    parallel.sync_weights()
    if comm.rank:  # ranks sample their own actions (rank 0 keeps the single-process streams)
        seed_everything(config.runner.seed + comm.rank)
    return parallel


__all__ = ["DataParallelWorkers", "build_data_parallel", "local_config"]
