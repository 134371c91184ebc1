"""The single-process training engine: AdamW with its own learning rate for the value head,
gradient clipping, and optimizer state that goes into checkpoints (keyed by parameter name, the
format every engine shares)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from vla_rl.engines.optim_state import load_optimizer, save_optimizer
from vla_rl.engines.registry import ENGINES

VALUE_HEAD_PREFIX = "value_head"


def param_groups(policy: nn.Module, lr: float, value_lr: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: the policy at `lr`, the value head at its own `value_lr`."""
    backbone, value = [], []
    for name, param in policy.named_parameters():
        if param.requires_grad:
            (value if name.startswith(VALUE_HEAD_PREFIX) or f".{VALUE_HEAD_PREFIX}" in name else backbone).append(param)
    if not backbone and not value:
        raise ValueError("the policy has no trainable parameters: check model.lora and freezing settings")
    groups = [{"params": backbone, "lr": lr, "name": "policy"}]
    if value:
        groups.append({"params": value, "lr": value_lr, "name": "value_head"})
    return groups


class SingleEngine:
    """Steps one policy's trainable parameters in this process."""

    def __init__(self, policy: nn.Module, lr: float, value_lr: float, weight_decay: float,
                 max_grad_norm: float | None) -> None:
        self.policy = policy
        self.max_grad_norm = max_grad_norm
        groups = param_groups(policy, lr, value_lr)
        self.params = [p for g in groups for p in g["params"]]
        self.optimizer = torch.optim.AdamW(groups, weight_decay=weight_decay)

    def step(self, loss: torch.Tensor) -> dict[str, float]:
        """Backward, clip, step; returns the gradient norm before clipping."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.max_grad_norm is not None:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        else:
            grad_norm = torch.linalg.vector_norm(
                torch.stack([p.grad.norm() for p in self.params if p.grad is not None]))
        self.optimizer.step()
        return {"train/grad_norm": float(grad_norm)}

    def offload(self) -> None:
        """Move the optimizer state to host memory (between phases on a shared GPU; no-op on CPU)."""
        move_optimizer_state(self.optimizer, torch.device("cpu"))

    def onload(self) -> None:
        """Bring the optimizer state back next to the parameters."""
        if self.params:
            move_optimizer_state(self.optimizer, self.params[0].device)

    def state_dict(self) -> dict[str, Any]:
        """Optimizer state keyed by parameter name (`vla_rl.engines.optim_state`, shared with FSDP2)."""
        return save_optimizer(self.policy, self.optimizer)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_optimizer(self.policy, self.optimizer, state)


def move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.device != device and key != "step":
                state[key] = value.to(device, non_blocking=True)


@ENGINES.register("single")
def build_single(config, policy: nn.Module) -> SingleEngine:
    algo = config.algorithm
    return SingleEngine(policy, lr=algo.lr, value_lr=algo.value_lr, weight_decay=algo.weight_decay,
                        max_grad_norm=algo.max_grad_norm)
