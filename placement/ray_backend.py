"""The Ray backend: the plan's env and rollout workers as Ray actors in one placement group.

The placement group has one bundle per planned device ({"GPU": 1}, or {"CPU": 1} per CPU slot). An
actor on device d is scheduled into bundle d with a fraction of it (1 / actors on d), so Ray hands
it that GPU through CUDA_VISIBLE_DEVICES; env actors' simulator processes inherit it.

- env: one `EnvActor` per planned env worker, each holding a contiguous block of N/W envs; the
  driver-side `RayVectorEnv` keeps the reset cursor and auto-reset (placement/ray_env.py).
- rollout: one `RolloutWorker` actor per rollout device (one over all CPU slots), behind a
  `RolloutGroup`; the driver's `WeightSender` syncs them (full first, then trainable tensors).
- actor: the driver process trains the policy with the configured engine.

`ray_cluster` connects to `placement.ray_address` (or starts a local Ray) and reads its resources.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

from placement.cluster import Cluster, detect_cluster, tensor_device
from placement.local import build_actor
from placement.plan import Plan
from placement.registry import CLUSTERS, PLACEMENTS
from placement.replay_env import ReplayEnv
from placement.rollout_group import RolloutGroup, worker_kwargs
from placement.weight_sync import WeightSender
from placement.workers import Workers


@CLUSTERS.register("ray")
def ray_cluster(cfg) -> Cluster:
    """The devices of the Ray cluster this process is connected to (connecting first if needed)."""
    import ray

    if not ray.is_initialized():
        ray.init(address=cfg.ray_address, include_dashboard=False, log_to_driver=False)
    return detect_cluster(cfg, ray_resources=ray.cluster_resources())


class RayHandle:
    """A Ray actor as a `RolloutGroup` worker handle (`submit` / `result` / `close`)."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def submit(self, method: str, *args: Any) -> Any:
        return getattr(self.actor, method).remote(*args)

    def result(self, ref: Any) -> Any:
        import ray

        return ray.get(ref)

    def call(self, method: str, *args: Any) -> Any:
        return self.result(self.submit(method, *args))

    def close(self) -> None:
        import ray

        ray.kill(self.actor)


class _PlacementGroup:
    """One bundle per cluster device; `options(device)` schedules an actor into that device's bundle."""

    def __init__(self, plan: Plan, per_device: Counter) -> None:
        import ray
        from ray.util.placement_group import placement_group

        self.kind = plan.cluster.kind
        self.devices = sorted(per_device)
        self.index = {d: i for i, d in enumerate(self.devices)}
        self.share = {d: round(1.0 / n, 4) for d, n in per_device.items()}
        unit = "GPU" if self.kind == "gpu" else "CPU"
        self.pg = placement_group([{unit: 1} for _ in self.devices], strategy="PACK")
        ray.get(self.pg.ready(), timeout=120)

    def options(self, device: int) -> dict[str, Any]:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        strategy = PlacementGroupSchedulingStrategy(self.pg, placement_group_bundle_index=self.index[device])
        if self.kind == "gpu":
            return dict(num_gpus=self.share[device], num_cpus=0, scheduling_strategy=strategy)
        return dict(num_cpus=self.share[device], scheduling_strategy=strategy)

    def close(self) -> None:
        from ray.util.placement_group import remove_placement_group

        remove_placement_group(self.pg)


def _env_devices(plan: Plan) -> list[int]:
    """The device of each env actor (round robin over the env's devices)."""
    return [plan.env.devices[j % len(plan.env.devices)] for j in range(plan.env.workers)]


def _rollout_devices(plan: Plan) -> list[int]:
    return list(plan.rollout.devices) if plan.cluster.kind == "gpu" else [plan.rollout.devices[0]]


def build_ray(config, plan: Plan) -> Workers:
    """Env actors, rollout actors and the driver-side actor, for any mode (the plan sets the devices)."""
    import ray

    from placement.ray_env import EnvActor, RayVectorEnv
    from placement.rollout_worker import RolloutWorker

    env_devices, rollout_devices = _env_devices(plan), _rollout_devices(plan)
    group = _PlacementGroup(plan, Counter(env_devices + rollout_devices))
    closers: list[Any] = []
    env = None
    try:
        n, w = config.env.num_envs, plan.env.workers
        blocks = [list(range(j * n // w, (j + 1) * n // w)) for j in range(w)]
        block_cfg = [replace(config.env, num_envs=len(b), num_workers=1) for b in blocks]
        remote_env = ray.remote(EnvActor)
        actors = [remote_env.options(**group.options(d)).remote(cfg) for d, cfg in zip(env_devices, block_cfg)]
        env = ReplayEnv(RayVectorEnv(actors, blocks, auto_reset=config.env.auto_reset, seed=config.env.seed))
        device = tensor_device(plan.cluster, plan.actor.devices, config.placement)
        policy, engine = build_actor(config, env.spec, device)
        threads = config.placement.torch_threads or (1 if plan.cluster.kind == "gpu" else len(plan.rollout.devices))
        remote_rollout = ray.remote(RolloutWorker)
        handles = [RayHandle(remote_rollout.options(**group.options(d)).remote(
            **worker_kwargs(config, env.spec, "auto", threads))) for d in rollout_devices]
        rollout = RolloutGroup(handles)
        closers.append(rollout)
    except BaseException:
        for closer in closers:
            closer.close()
        if env is not None:
            env.close()
        group.close()
        raise
    closers.append(group)
    return Workers(env=env, policy=policy, engine=engine, device=device, plan=plan, rollout=rollout,
                   weight_sync=WeightSender(policy), torch_threads=config.placement.torch_threads,
                   train_threads=config.placement.train_threads, closers=closers)


for _mode in ("collocated", "hybrid", "disaggregated"):
    PLACEMENTS.register(f"ray/{_mode}")(build_ray)

__all__ = ["RayHandle", "build_ray", "ray_cluster"]
