"""The optimizer-state format every engine writes into checkpoints: keyed by parameter name.

`torch.distributed.checkpoint.state_dict` gives the full (unsharded) optimizer state with each
parameter's fully qualified name as its key, for a plain module and for an FSDP2-sharded one alike;
so a checkpoint written by the single-process engine resumes under FSDP2 and back. Checkpoints in
torch's positional format (`optimizer.state_dict()`, integer keys) still load.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict, set_optimizer_state_dict


def save_optimizer(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Full optimizer state, on the CPU, keyed by parameter name."""
    return get_optimizer_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_optimizer(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load `save_optimizer` output (or a positional `optimizer.state_dict()`) into `optimizer`."""
    if all(isinstance(k, int) for k in state.get("state", {})) and state.get("param_groups") and \
            all(isinstance(p, int) for g in state["param_groups"] for p in g["params"]):
        optimizer.load_state_dict(state)
        return
    sharded = any(hasattr(p, "device_mesh") for p in model.parameters())
    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=sharded))


__all__ = ["load_optimizer", "save_optimizer"]
