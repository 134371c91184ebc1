"""The FSDP2 training engine: the policy's parameters, gradients and AdamW state sharded over the ranks
of the default `torch.distributed` process group (`torch.distributed.fsdp.fully_shard`; gloo on CPU,
NCCL on GPUs).

Every `nn.ModuleList` entry (transformer blocks of the towers and the LM) becomes its own FSDP unit
and the policy the root; `act` and `evaluate` are registered as forward methods so the root's
parameters are gathered around them. Each rank evaluates its own share of the batch and calls
`step(loss)` with the mean loss of that share: gradients are averaged over ranks, so equal shares
train like one process on the whole batch. `state_dict()` is the full optimizer state keyed by
parameter name, the same format as the single-process engine (`vla_rl.engines.optim_state`), and
`full_model_state()` gathers the weights for `save_pretrained` on rank 0.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from vla_rl.engines.optim_state import load_optimizer, save_optimizer
from vla_rl.engines.registry import ENGINES
from vla_rl.engines.single import move_optimizer_state, param_groups

FORWARD_METHODS = ("act", "evaluate")


def shard_policy(policy: nn.Module) -> nn.Module:
    """Apply `fully_shard` to every block of every ModuleList, then to the policy (in place)."""
    from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

    if not dist.is_initialized():
        raise RuntimeError("the fsdp2 engine needs torch.distributed initialised (torchrun, or "
                           "dist.init_process_group('gloo') on CPU); use placement.engine=single for one process")
    for module in list(policy.modules()):
        if isinstance(module, nn.ModuleList):
            for block in module:
                if any(p.numel() for p in block.parameters()):
                    fully_shard(block)
    fully_shard(policy)
    for method in FORWARD_METHODS:
        if hasattr(policy, method):
            register_fsdp_forward_method(policy, method)
    return policy


class FSDP2Engine:
    """Steps a sharded policy; see the module docstring."""

    def __init__(self, policy: nn.Module, lr: float, value_lr: float, weight_decay: float,
                 max_grad_norm: float | None) -> None:
        self.policy = shard_policy(policy)
        self.max_grad_norm = max_grad_norm
        groups = param_groups(self.policy, lr, value_lr)  # DTensor parameters, grouped like SingleEngine
        self.params = [p for g in groups for p in g["params"]]
        self.optimizer = torch.optim.AdamW(groups, weight_decay=weight_decay)

    def step(self, loss: torch.Tensor) -> dict[str, float]:
        """Backward (gradients reduce-scattered, averaged over ranks), clip by the global norm, step."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p for p in self.params if p.grad is not None]
        if self.max_grad_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(grads, self.max_grad_norm)
        else:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in grads]))
        norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
        self.optimizer.step()
        return {"train/grad_norm": float(norm)}

    def offload(self) -> None:
        move_optimizer_state(self.optimizer, torch.device("cpu"))

    def onload(self) -> None:
        if self.params:
            move_optimizer_state(self.optimizer, self.params[0].device)

    def state_dict(self) -> dict[str, Any]:
        """Full optimizer state keyed by parameter name (collective: every rank must call it)."""
        return save_optimizer(self.policy, self.optimizer)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_optimizer(self.policy, self.optimizer, state)

    def full_model_state(self) -> dict[str, torch.Tensor]:
        """The unsharded weights on the CPU (collective), e.g. for `save_pretrained` on rank 0."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(self.policy, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


@ENGINES.register("fsdp2")
def build_fsdp2(config, policy: nn.Module) -> FSDP2Engine:
    if not dist.is_initialized():
        from vla_rl.config.core import ConfigError

        raise ConfigError("placement.engine=fsdp2 shards the actor over the ranks of a torch.distributed group, and "
                          "the runner drives one actor process: launch the actor ranks with torchrun (see "
                          "docs/placement.md) or use placement.engine=single", key="placement.engine")
    algo = config.algorithm
    return FSDP2Engine(policy, lr=algo.lr, value_lr=algo.value_lr, weight_decay=algo.weight_decay,
                       max_grad_norm=algo.max_grad_norm)


__all__ = ["FSDP2Engine", "shard_policy"]
