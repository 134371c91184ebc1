"""The single-process training engine: AdamW with its own learning rate for the value head,
gradient clipping, and optimizer state that goes into checkpoints (keyed by parameter name, the
format every engine shares). The step itself is `vla_rl.engines.base.TorchEngine`'s."""

from __future__ import annotations

from torch import nn

from vla_rl.engines.base import TorchEngine, move_optimizer_state, param_groups
from vla_rl.engines.registry import ENGINES


class SingleEngine(TorchEngine):
    """Steps one policy's trainable parameters in this process."""


@ENGINES.register("single")
def build_single(config, policy: nn.Module) -> SingleEngine:
    algo = config.algorithm
    return SingleEngine(policy, lr=algo.lr, value_lr=algo.value_lr, weight_decay=algo.weight_decay,
                        max_grad_norm=algo.max_grad_norm)


__all__ = ["SingleEngine", "move_optimizer_state", "param_groups"]
