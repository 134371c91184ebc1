"""The local backend: a plan carried out by processes on this machine, no cluster needed.

- env: `SubprocVectorEnv` worker processes (count from the plan), pinned to the env's CPU slots.
- rollout: collocated and hybrid act with the actor's own policy in this process (pinned to the
  rollout's slots during the rollout phase); disaggregated acts in a rollout worker process of its
  own (`placement.process_host`, `placement.rollout_group`), synced by `placement.weight_sync`.
- actor: this process trains the policy with the configured engine (pinned to the actor's slots
  during training); on GPUs the optimizer state is offloaded to host memory during the rollout when
  the plan says so.

The runner sees only `placement.workers.Workers`.
"""

from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from typing import Any, Iterator

import torch

from placement.cluster import cores_of, detect_cluster, tensor_device
from placement.plan import Plan
from placement.registry import CLUSTERS, PLACEMENTS
from placement.replay_env import ReplayEnv
from placement.workers import Workers

CLUSTERS.register("local")(detect_cluster)


@contextmanager
def _visible_gpus(plan: Plan, devices: tuple[int, ...]) -> Iterator[None]:
    """Spawned env workers inherit CUDA_VISIBLE_DEVICES = the env's GPUs while they are started."""
    if plan.cluster.kind != "gpu":
        yield
        return
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(d) for d in devices)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before


def build_env(config, plan: Plan) -> ReplayEnv:
    """The training env with the plan's worker count, its workers pinned to the env's CPU slots, wrapped
    so that checkpoints can restore the episodes in flight exactly (`placement.replay_env`)."""
    from simulators.registry import make_env

    with _visible_gpus(plan, plan.env.devices):
        env = make_env(replace(config.env, num_workers=plan.env.workers))
    if _pins(config, plan):
        env.pin_workers(cores_of(plan.cluster, plan.env.devices))
    return ReplayEnv(env)


def _pins(config, plan: Plan) -> bool:
    return config.placement.pin_cpus and plan.cluster.kind == "cpu" and plan.mode != "collocated"


def build_actor(config, spec, device: torch.device):
    """The actor's policy (seeded, from config) and its training engine."""
    from vla_rl.engines.registry import build_engine
    from vla_rl.models.registry import build_policy

    # On a GPU the policy is built there: a 7b model is never materialised in host memory.
    with torch.device(device) if device.type == "cuda" else nullcontext():
        policy = build_policy(config.model, action_dim=spec.action_dim, cameras=spec.cameras,
                              proprio_dim=spec.proprio_dim, seed=config.runner.seed,
                              gripper_convention=spec.gripper_convention)
    policy.to(device)
    return policy, build_engine(config, policy)


def _build_local(config, plan: Plan) -> Workers:
    """Collocated and hybrid: the rollout is the actor's policy in this process."""
    if config.placement.torch_threads:
        torch.set_num_threads(config.placement.torch_threads)
    device = tensor_device(plan.cluster, plan.rollout.devices, config.placement)
    env = build_env(config, plan)
    try:
        policy, engine = build_actor(config, env.spec, device)
    except BaseException:
        env.close()
        raise
    pins = _pins(config, plan)
    return Workers(env=env, policy=policy, engine=engine, device=device, plan=plan,
                   rollout_cores=cores_of(plan.cluster, plan.rollout.devices) if pins else None,
                   actor_cores=cores_of(plan.cluster, plan.actor.devices) if pins else None,
                   torch_threads=config.placement.torch_threads, train_threads=config.placement.train_threads)


PLACEMENTS.register("local/collocated")(_build_local)
PLACEMENTS.register("local/hybrid")(_build_local)


@PLACEMENTS.register("local/disaggregated")
def _build_disaggregated(config, plan: Plan) -> Workers:
    """Env workers, a rollout worker process and the actor (this process) on disjoint devices."""
    from placement.rollout_group import start_local_rollout
    from placement.weight_sync import WeightSender

    if config.placement.torch_threads:
        torch.set_num_threads(config.placement.torch_threads)
    device = tensor_device(plan.cluster, plan.actor.devices, config.placement)
    pins = _pins(config, plan)
    env = build_env(config, plan)
    closers: list[Any] = []
    try:
        policy, engine = build_actor(config, env.spec, device)
        rollout = start_local_rollout(config, plan, env.spec, cores_of(plan.cluster, plan.rollout.devices) if pins else None)
        closers.append(rollout)
    except BaseException:
        for closer in closers:
            closer.close()
        env.close()
        raise
    actor_cores = cores_of(plan.cluster, plan.actor.devices) if pins else None
    # This process only drives the rollout (the rollout worker infers), so it stays on the actor's slots.
    return Workers(env=env, policy=policy, engine=engine, device=device, plan=plan, rollout=rollout,
                   weight_sync=WeightSender(policy), rollout_cores=actor_cores, actor_cores=actor_cores,
                   torch_threads=config.placement.torch_threads, train_threads=config.placement.train_threads,
                   closers=closers)


__all__ = ["build_actor", "build_env"]
