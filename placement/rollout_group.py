"""The rollout as the runner sees it when it runs in separate workers: one object with `act`.

`RolloutGroup` splits a batch of observations evenly over its workers (data-parallel inference),
calls them all before waiting on any, and joins their `ActOutput`s in env order. A worker handle is
anything with `submit(method, *args) -> ticket`, `result(ticket)` and `close()`: a `ProcessHost`
locally, a Ray actor adapter (`RayHandle`) on a cluster. `start_local_rollout` starts the local backend's rollout workers.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from placement.process_host import ProcessHost
from simulators.base import select_obs


def join_outputs(outs: Sequence[Any]):
    """One `ActOutput` from the outputs of consecutive blocks of a batch."""
    from vla_rl.models.base import ActOutput

    first = outs[0]
    values = None if first.values is None else torch.cat([o.values for o in outs])
    return ActOutput(actions=np.concatenate([o.actions for o in outs]),
                     forward_inputs={k: torch.cat([o.forward_inputs[k] for o in outs]) for k in first.forward_inputs},
                     logprobs=torch.cat([o.logprobs for o in outs]), values=values)


class RolloutGroup:
    """Rollout workers behind one `act`; see the module docstring."""

    def __init__(self, handles: Sequence[Any]) -> None:
        if not handles:
            raise ValueError("a rollout group needs at least one worker")
        self.handles = list(handles)

    def act(self, obs: dict[str, Any], mode: str = "sample", temperature: float = 1.0):
        tickets = [(h, h.submit("act", select_obs(obs, b), mode, temperature))
                   for h, b in zip(self.handles, self._blocks(obs))]
        return join_outputs([h.result(t) for h, t in tickets])

    def value(self, obs: dict[str, Any]) -> torch.Tensor | None:
        """The policy's values of `obs` (no decoding), split over the workers as `act` splits it."""
        tickets = [(h, h.submit("value", select_obs(obs, b))) for h, b in zip(self.handles, self._blocks(obs))]
        values = [h.result(t) for h, t in tickets]
        return None if values[0] is None else torch.cat(values)

    def _blocks(self, obs: dict[str, Any]) -> list[np.ndarray]:
        n = len(obs["instruction"])
        return [b for b in np.array_split(np.arange(n), len(self.handles)) if len(b)]

    def call_all(self, method: str, *args: Any) -> list[Any]:
        """Call `method` on every worker (all sent before any is waited on); results in worker order."""
        tickets = [(h, h.submit(method, *args)) for h in self.handles]
        return [h.result(t) for h, t in tickets]

    def load_weights(self, payload) -> int:
        versions = set(self.call_all("load_weights", payload))
        if len(versions) != 1:
            raise RuntimeError(f"rollout workers hold different weight versions {sorted(versions)} after one sync")
        return versions.pop()

    def rng_states(self) -> list[Any]:
        """Each worker's sampling RNG state (for exact resume)."""
        return self.call_all("rng_state")

    def set_rng_states(self, states: Sequence[Any]) -> None:
        if len(states) != len(self.handles):
            raise ValueError(f"{len(states)} RNG states for {len(self.handles)} rollout workers; resume with the "
                             "placement the checkpoint was written with")
        tickets = [(h, h.submit("set_rng_state", s)) for h, s in zip(self.handles, states)]
        for h, t in tickets:
            h.result(t)

    def close(self) -> None:
        for h in self.handles:
            h.close()


def worker_kwargs(config, spec, device: str, threads: int) -> dict[str, Any]:
    """Constructor arguments of a `RolloutWorker` for this run (same model config and seed as the actor)."""
    return dict(model=config.model, action_dim=spec.action_dim, cameras=tuple(spec.cameras),
                proprio_dim=spec.proprio_dim, gripper_convention=spec.gripper_convention, seed=config.runner.seed,
                device=device, torch_threads=threads)


def start_local_rollout(config, plan, spec, cores: list[int] | None) -> RolloutGroup:
    """The local backend's rollout workers: one process per rollout GPU, or one over the rollout's CPU slots."""
    hosts: list[ProcessHost] = []
    try:
        if plan.cluster.kind == "gpu":
            device = "cuda:0" if torch.cuda.is_available() and config.placement.device != "cpu" else "cpu"
            for d in plan.rollout.devices:
                hosts.append(ProcessHost("placement.rollout_worker:RolloutWorker", worker_kwargs(config, spec, device, 0),
                                         env_vars={"CUDA_VISIBLE_DEVICES": str(d)}, name=f"rollout-gpu{d}"))
        else:
            threads = config.placement.torch_threads or len(plan.rollout.devices)
            hosts.append(ProcessHost("placement.rollout_worker:RolloutWorker", worker_kwargs(config, spec, "cpu", threads),
                                     cores=cores, name="rollout-cpu"))
    except BaseException:
        for h in hosts:
            h.close()
        raise
    return RolloutGroup(hosts)


__all__ = ["RolloutGroup", "join_outputs", "start_local_rollout", "worker_kwargs"]
