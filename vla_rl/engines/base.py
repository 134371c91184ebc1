"""What every training engine shares: AdamW parameter groups (the value head at its own learning
rate), moving optimizer state between devices, and `TorchEngine`, the step of a `torch.optim.AdamW`
over the policy's parameters that the single-process and FSDP2 engines both are.

The engine contract (see `vla_rl.engines.registry`):
    policy                 the module being trained (wrapped or sharded by the engine)
    step(loss)             backward, clip by the global norm, step; returns {"train/grad_norm": ...}
    offload() / onload()   optimizer state to host memory and back (between phases on a shared GPU)
    state_dict()           the optimizer state keyed by parameter name (`vla_rl.engines.optim_state`)
    load_state_dict(s)     load that format (or torch's positional one)
    full_model_state()     the whole, unsharded weights on the CPU (collective where sharded)
    load_model_state(s)    load whole weights (a resumed checkpoint) into the trained module
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from vla_rl.engines.optim_state import load_optimizer, save_optimizer

VALUE_HEAD_PREFIX = "value_head"


def is_value_head(name: str) -> bool:
    """Whether parameter `name` belongs to the value head (trained at `algorithm.value_lr`)."""
    return name.startswith(VALUE_HEAD_PREFIX) or f".{VALUE_HEAD_PREFIX}" in name


def param_groups(policy: nn.Module, lr: float, value_lr: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: the policy at `lr`, the value head at its own `value_lr`."""
    backbone, value = [], []
    for name, param in policy.named_parameters():
        if param.requires_grad:
            (value if is_value_head(name) else backbone).append(param)
    if not backbone and not value:
        raise ValueError("the policy has no trainable parameters: check model.lora and freezing settings")
    groups = [{"params": backbone, "lr": lr, "name": "policy"}]
    if value:
        groups.append({"params": value, "lr": value_lr, "name": "value_head"})
    return groups


def move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Move every state tensor but the step counters to `device`."""
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.device != device and key != "step":
                state[key] = value.to(device, non_blocking=True)


def full_value(tensor: torch.Tensor) -> torch.Tensor:
    """A DTensor's full value (collective), or the tensor itself."""
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


class TorchEngine:
    """`torch.optim.AdamW` over the trainable parameters of `prepare(policy)`; clipping by the global norm.

    Subclasses override `prepare` (wrap or shard the policy) and the whole-weights pair
    (`full_model_state` / `load_model_state`) where the parameters are not plain tensors.
    """

    def __init__(self, policy: nn.Module, lr: float, value_lr: float, weight_decay: float,
                 max_grad_norm: float | None) -> None:
        self.policy = self.prepare(policy)
        self.max_grad_norm = max_grad_norm
        groups = param_groups(self.policy, lr, value_lr)
        self.params = [p for g in groups for p in g["params"]]
        self.optimizer = torch.optim.AdamW(groups, weight_decay=weight_decay)

    def prepare(self, policy: nn.Module) -> nn.Module:
        """The module to train (the policy itself here)."""
        return policy

    def step(self, loss: torch.Tensor) -> dict[str, float]:
        """Backward, clip, step; returns the global gradient norm before clipping."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        limit = math.inf if self.max_grad_norm is None else self.max_grad_norm  # inf: measure, scale by 1
        norm = torch.nn.utils.clip_grad_norm_(self.params, limit)
        self.optimizer.step()
        return {"train/grad_norm": float(full_value(norm))}

    def offload(self) -> None:
        """Move the optimizer state to host memory (between phases on a shared GPU; no-op on CPU)."""
        move_optimizer_state(self.optimizer, torch.device("cpu"))

    def onload(self) -> None:
        """Bring the optimizer state back next to the parameters."""
        if self.params:
            move_optimizer_state(self.optimizer, self.params[0].device)

    def state_dict(self) -> dict[str, Any]:
        """Optimizer state keyed by parameter name (`vla_rl.engines.optim_state`; collective when sharded)."""
        return save_optimizer(self.policy, self.optimizer)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_optimizer(self.policy, self.optimizer, state)

    def full_model_state(self) -> dict[str, torch.Tensor]:
        """The whole weights on the CPU, keyed like `policy.state_dict()`."""
        return {k: v.detach().to("cpu", copy=True) for k, v in self.policy.state_dict().items()}

    def load_model_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load whole weights (e.g. a resumed checkpoint's) into the trained module."""
        self.policy.load_state_dict(state)


__all__ = ["TorchEngine", "VALUE_HEAD_PREFIX", "full_value", "is_value_head", "move_optimizer_state", "param_groups"]
