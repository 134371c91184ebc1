"""A rollout worker: a copy of the policy that only acts, kept in step with the actor by weight sync.

Lives in its own process (`placement.process_host.ProcessHost` locally, a Ray actor on a cluster)
on the rollout's devices. It is built from the same model config and seed as the actor, then
receives the actor's weights as versioned payloads (`placement.weight_sync`); `act` answers with
the same `ActOutput` the policy's own `act` returns, tensors moved to the CPU for the trip back.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from placement.weight_sync import WeightPayload, WeightReceiver, state_checksum


class RolloutWorker:
    """Acts with a policy copy; see the module docstring."""

    def __init__(self, model: Any, action_dim: int, cameras: tuple[str, ...], proprio_dim: int,
                 gripper_convention: str, seed: int, device: str = "cpu", torch_threads: int = 1) -> None:
        from vla_rl.models.registry import build_policy

        if torch_threads:
            torch.set_num_threads(torch_threads)
        torch.manual_seed(seed)
        if device == "auto":  # the first GPU this process was given, if torch can use it here
            device = "cuda:0" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.policy = build_policy(model, action_dim=action_dim, cameras=cameras, proprio_dim=proprio_dim,
                                   seed=seed, gripper_convention=gripper_convention).to(self.device).eval()
        self.receiver = WeightReceiver(self.policy)

    def act(self, obs: dict[str, Any], mode: str = "sample", temperature: float = 1.0):
        out = self.policy.act(obs, mode=mode, temperature=temperature)
        out.forward_inputs = {k: v.cpu() for k, v in out.forward_inputs.items()}
        out.logprobs = out.logprobs.cpu()
        out.values = out.values.cpu() if out.values is not None else None
        return out

    def value(self, obs: dict[str, Any]) -> torch.Tensor | None:
        values = self.policy.value(obs)
        return values.cpu() if values is not None else None

    def load_weights(self, payload: WeightPayload) -> int:
        """Apply a weight payload (order and checksum checked); returns the version now held."""
        return self.receiver.apply(payload)

    def version(self) -> int:
        return self.receiver.version

    def checksum(self) -> str:
        """Checksum of the whole policy state (compare with `state_checksum(actor_policy)`)."""
        return state_checksum(self.policy)

    def rng_state(self) -> torch.Tensor:
        """The torch RNG state sampling draws from (saved in checkpoints for exact resume)."""
        return torch.get_rng_state()

    def set_rng_state(self, state: torch.Tensor) -> None:
        torch.set_rng_state(state)

    def visible_devices(self) -> dict[str, Any]:
        """What this process was given: CUDA_VISIBLE_DEVICES, CPU affinity, pid (for placement checks)."""
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        return {"CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"), "cores": cores, "pid": os.getpid()}


__all__ = ["RolloutWorker"]
