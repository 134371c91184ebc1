"""The FSDP2 training engine: the policy's parameters, gradients and AdamW state sharded over the ranks
of the default `torch.distributed` process group (`torch.distributed.fsdp.fully_shard`; gloo on CPU,
NCCL on GPUs).

Every `nn.ModuleList` entry (transformer blocks of the towers and the LM) becomes its own FSDP unit
and the policy the root; `act` and `evaluate` are registered as forward methods so the root's
parameters are gathered around them. Each rank evaluates its own share of the batch and calls
`step(loss)` with the mean loss of that share: gradients are averaged over ranks, so equal shares
train like one process on the whole batch. The step, offload and checkpoint format are
`vla_rl.engines.base.TorchEngine`'s (the optimizer state is name-keyed and unsharded, as with the
single-process engine); `full_model_state()` gathers the weights, e.g. for `save_pretrained`.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from vla_rl.engines.base import TorchEngine
from vla_rl.engines.registry import ENGINES, require_process_group

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


class FSDP2Engine(TorchEngine):
    """Steps a sharded policy; see the module docstring."""

    def prepare(self, policy: nn.Module) -> nn.Module:
        return shard_policy(policy)

    def full_model_state(self) -> dict[str, torch.Tensor]:
        """The unsharded weights on the CPU, on every rank (collective: every rank must call it)."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        # (cpu_offload=True would leave the other ranks empty-handed; their rollout replicas need the weights)
        state = get_model_state_dict(self.policy, options=StateDictOptions(full_state_dict=True))
        return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}

    def load_model_state(self, state: dict[str, torch.Tensor]) -> None:
        """Shard whole weights (every rank passes the same `state`) into the policy's parameters."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        set_model_state_dict(self.policy, state, options=StateDictOptions(full_state_dict=True))


@ENGINES.register("fsdp2")
def build_fsdp2(config, policy: nn.Module) -> FSDP2Engine:
    require_process_group("fsdp2")
    algo = config.algorithm
    return FSDP2Engine(policy, lr=algo.lr, value_lr=algo.value_lr, weight_decay=algo.weight_decay,
                       max_grad_norm=algo.max_grad_norm)


__all__ = ["FSDP2Engine", "shard_policy"]
