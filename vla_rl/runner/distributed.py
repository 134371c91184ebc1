"""Data-parallel training with a distributed engine (`placement.engine=fsdp2` or `deepspeed`) under torchrun.

    torchrun --nproc-per-node 2 -m vla_rl.cli.train [RECIPE] placement.engine=fsdp2 [key=value ...]

Every rank runs the whole loop on its own share of the run: rank r gets envs [r*M, (r+1)*M) of
`env.num_envs` = N (M = N / ranks) in its own env workers, on its own device (CPU slot or GPU r),
with reset ids handed out as one process would (`vla_rl.runner.rank_env`). It rolls out with a
plain local copy of the policy (the replica, refreshed from the engine's gathered weights after every
update), so a rollout or an evaluation runs no collective: a rank whose episodes all ended may stop
early without leaving the others waiting inside a sharded forward. The learner evaluates with the
engine's sharded module and the engine averages gradients over ranks. What must agree does so
through `vla_rl.runner.collective`: advantage-normalisation statistics, the step count of grouped
episodes, KL early stopping, the training budget. Evaluation ids are split over ranks and the
results gathered; episode statistics are gathered; `train/` metrics are each rank's averaged over
ranks (min/max over all ranks; a std is the mean of the ranks' stds, not the whole batch's). Only
rank 0 writes logs, checkpoints and evaluation records; a checkpoint has the single-process layout
(the replica's `save_pretrained`, the name-keyed optimizer state, all N envs' replay log) plus each
rank's RNG streams.

`SingleProcess` is the same set of hooks for one process, each the identity; `ranks_for(config)`
picks the one the runner uses and `start_ranks` joins torchrun's process group in `vla-rl train`.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from placement.workers import Workers
from vla_rl.config.core import ConfigError
from vla_rl.engines.registry import DISTRIBUTED_ENGINES, torchrun_command
from vla_rl.runner.collective import Collective, ProcessGroup
from vla_rl.seeding import seed_everything


class SingleProcess:
    """The runner's distribution hooks for one process: each is the identity."""

    comm: Collective = Collective()
    all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None
    """Sums a tensor over ranks for statistics that span the whole batch (None: one process)."""

    @property
    def is_main(self) -> bool:
        return self.comm.is_main

    def local_config(self, config):
        """The config this rank builds its workers from."""
        return config

    def prepare(self, workers: Workers, config) -> Workers:
        """The workers the runner uses."""
        return workers

    def env_span(self, num_envs: int) -> tuple[int, int]:
        """(index of this rank's first env, envs of all ranks)."""
        return 0, num_envs

    def shard(self, items: Sequence[Any]) -> list[Any]:
        """This rank's share of `items` (evaluation ids)."""
        return list(items)

    def gather_eval(self, result):
        return result

    def gather_stats(self, stats):
        return stats

    def total(self, value: float) -> float:
        return value

    def mean_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        return metrics

    def gather_obs(self, obs):
        return obs

    def local_obs(self, obs):
        return obs

    def open_log(self, log_dir: Path):
        from vla_rl.runner.metrics_log import MetricsLog

        return MetricsLog(log_dir)

    def checkpoint_extra(self, generator: torch.Generator) -> dict[str, Any]:
        return {}

    def restore_extra(self, extra: dict[str, Any], generator: torch.Generator) -> None:
        pass


class NullLog:
    """The metrics log of ranks other than 0: writes nothing."""

    def write(self, step: int, metrics: dict[str, float]) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class DataParallelWorkers(Workers):
    """A rank's workers: `policy` is the rollout replica (plain module, whole weights), `engine.policy` the
    sharded module being trained; the replica is refreshed from the engine after every training phase."""

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        with super().phase(name):
            yield
        if name == "train":
            self.refresh()

    def refresh(self) -> None:
        """Load the engine's gathered weights into the replica (collective)."""
        self.policy.load_state_dict(self.engine.full_model_state())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """On resume, after the runner loaded the checkpoint's weights into the replica: load them into the engine."""
        super().load_state_dict(state)
        self.engine.load_model_state(self.policy.state_dict())


class DataParallel(SingleProcess):
    """The hooks of one rank of a data-parallel run; see the module docstring."""

    def __init__(self) -> None:
        self.comm = ProcessGroup()
        self.all_reduce = self.comm.sum
        self.local_rank = int(os.environ.get("LOCAL_RANK", self.comm.rank))
        self.first_env = 0
        self.num_envs = 0

    def local_config(self, config):
        """This rank's share: N / ranks envs (and env workers), the collocated plan on its own device."""
        p, env, world = config.placement, config.env, self.comm.world
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
        self.num_envs = env.num_envs // world
        self.first_env = self.comm.rank * self.num_envs
        if config.algorithm.uses_groups and self.num_envs % config.algorithm.group_size:
            raise ConfigError(f"env.num_envs={env.num_envs} gives each of the {world} ranks {self.num_envs} envs, "
                              f"not whole groups of algorithm.group_size={config.algorithm.group_size}; use a "
                              f"multiple of {world * config.algorithm.group_size}", key="env.num_envs")
        if env.num_workers is not None and env.num_workers % world:
            raise ConfigError(f"env.num_workers={env.num_workers} must split evenly over the {world} ranks (or be "
                              "null)", key="env.num_workers")
        self._check_devices(config)
        workers = None if env.num_workers is None else env.num_workers // world
        device = str(self.local_rank)
        return replace(config, env=replace(env, num_envs=self.num_envs, num_workers=workers),
                       placement=replace(p, env=device, rollout=device, actor=device))

    def _check_devices(self, config) -> None:
        from placement.cluster import detect_cluster

        cluster = detect_cluster(config.placement)
        if self.local_rank >= cluster.count:
            noun = "GPUs" if cluster.kind == "gpu" else "CPU slots"
            raise ConfigError(f"rank {self.local_rank} of this node has no device: {cluster.source} gives "
                              f"{cluster.count} {noun}; start at most {cluster.count} ranks per node "
                              "(torchrun --nproc-per-node)", key="placement.engine")

    def prepare(self, workers: Workers, config) -> DataParallelWorkers:
        """This rank's workers: the env as a block of the run's envs, a rollout replica of the policy."""
        from vla_rl.models.registry import build_policy
        from vla_rl.runner.rank_env import RankEnv

        spec = workers.env.spec
        replica = build_policy(config.model, action_dim=spec.action_dim, cameras=spec.cameras,
                               proprio_dim=spec.proprio_dim, seed=config.runner.seed,
                               gripper_convention=spec.gripper_convention).to(workers.device)
        values = {f.name: getattr(workers, f.name) for f in fields(Workers)}
        values.update(env=RankEnv(workers.env, self.comm, self.first_env, self.num_envs * self.comm.world),
                      policy=replica, rollout=replica)
        parallel = DataParallelWorkers(**values)
        parallel.refresh()
        if self.comm.rank:  # ranks sample their own actions (rank 0 keeps the single-process streams)
            seed_everything(config.runner.seed + self.comm.rank)
        return parallel

    def env_span(self, num_envs: int) -> tuple[int, int]:
        return self.first_env, num_envs * self.comm.world

    def shard(self, items: Sequence[Any]) -> list[Any]:
        return list(np.array_split(np.asarray(list(items), dtype=object), self.comm.world)[self.comm.rank])

    def gather_eval(self, result):
        from vla_rl.eval.episodes import EvalResult

        parts = self.comm.gather(result)
        merged = EvalResult(seconds=max(p.seconds for p in parts))
        for part in parts:
            merged.reset_ids += part.reset_ids
            merged.successes += part.successes
            merged.returns += part.returns
            merged.lengths += part.lengths
            merged.env_steps += part.env_steps
            merged.policy_calls += part.policy_calls
        return merged

    def gather_stats(self, stats):
        from vla_rl.runner.collect import EpisodeStats

        merged = EpisodeStats()
        for part in self.comm.gather(stats):
            merged.returns += part.returns
            merged.lengths += part.lengths
            merged.successes += part.successes
        return merged

    def total(self, value: float) -> float:
        return float(self.comm.sum(torch.tensor([float(value)], dtype=torch.float64)))

    def mean_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """Each metric averaged over the ranks that report it; `.../min` and `.../max` over all ranks."""
        from vla_rl.algorithms import mean_metrics

        parts = self.comm.gather(metrics)
        merged = mean_metrics(parts)
        for key in merged:
            pick = min if key.endswith("/min") else max if key.endswith("/max") else None
            if pick is not None:
                merged[key] = pick(p[key] for p in parts if key in p)
        return merged

    def gather_obs(self, obs):
        from vla_rl.runner.collect import concat_obs

        return concat_obs(self.comm.gather(obs))

    def local_obs(self, obs):
        from vla_rl.runner.collect import select_obs

        return select_obs(obs, np.arange(self.first_env, self.first_env + self.num_envs))

    def open_log(self, log_dir: Path):
        return super().open_log(log_dir) if self.is_main else NullLog()

    def checkpoint_extra(self, generator: torch.Generator) -> dict[str, Any]:
        from vla_rl.checkpoints import capture_rng

        return {"rank_rng": self.comm.gather({"rng": capture_rng(), "generator": generator.get_state()})}

    def restore_extra(self, extra: dict[str, Any], generator: torch.Generator) -> None:
        """Each rank's own RNG streams, when the checkpoint was written by as many ranks."""
        from vla_rl.checkpoints import restore_rng

        streams = extra.get("rank_rng")
        if streams is not None and len(streams) == self.comm.world:
            restore_rng(streams[self.comm.rank]["rng"])
            generator.set_state(streams[self.comm.rank]["generator"])


def ranks_for(config) -> SingleProcess:
    """The runner's hooks: data-parallel when the engine is distributed (a process group must exist)."""
    if config.placement.engine not in DISTRIBUTED_ENGINES:
        return SingleProcess()
    from vla_rl.engines.registry import require_process_group

    require_process_group(config.placement.engine)
    return DataParallel()




def start_ranks(config, args: list[str]) -> bool:
    """In `vla-rl train`: join torchrun's process group for a distributed engine (True when this call
    started it; `stop_ranks` ends it). A ConfigError with the command to run for launches that cannot work."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    engine = config.placement.engine
    if engine not in DISTRIBUTED_ENGINES:
        if world > 1:
            raise ConfigError(f"torchrun started {world} ranks, but placement.engine={engine} trains in one "
                              "process: add placement.engine=fsdp2 (or deepspeed), or run `vla-rl train` without "
                              "torchrun", key="placement.engine")
        return False
    if dist.is_initialized():
        return False
    if "RANK" not in os.environ or "MASTER_ADDR" not in os.environ:
        raise ConfigError(f"placement.engine={engine} trains data-parallel ranks that torchrun starts; run "
                          f"`{torchrun_command(engine, args, torch.cuda.device_count() or 2)}` "
                          "(docs/placement.md), or use placement.engine=single", key="placement.engine")
    gpu = torch.cuda.is_available() and config.placement.device != "cpu"
    if gpu:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if gpu else "gloo")
    return True


def on_main_rank(compute: Callable[[], Any], hours: float = 12.0) -> Any:
    """`compute()` on rank 0 only (e.g. the warm start: demos and SFT, which write files), its result sent
    to every rank; the others wait up to `hours` (a gloo group of its own, so the run's collectives keep
    their usual timeout). Without a process group, just `compute()`."""
    import datetime

    import torch.distributed as dist

    if not dist.is_initialized():
        return compute()
    group = dist.new_group(backend="gloo", timeout=datetime.timedelta(hours=hours))
    box: list[Any] = [None]
    try:
        if dist.get_rank() == 0:
            try:
                box[0] = ("ok", compute())
            except BaseException as exc:
                box[0] = ("failed", f"{type(exc).__name__}: {exc}")
                dist.broadcast_object_list(box, src=0, group=group)
                raise
        dist.broadcast_object_list(box, src=0, group=group)
    finally:
        dist.destroy_process_group(group)
    status, value = box[0]
    if status != "ok":
        raise RuntimeError(f"rank 0 failed before training ({value}); see its output")
    return value


def stop_ranks() -> None:
    """End the process group `start_ranks` started."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


__all__ = ["DataParallel", "DataParallelWorkers", "NullLog", "SingleProcess", "on_main_rank", "ranks_for",
           "start_ranks", "stop_ranks"]
