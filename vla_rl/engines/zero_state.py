"""DeepSpeed ZeRO optimizer state <-> the name-keyed format every engine writes (`optim_state.py`).

ZeRO keeps AdamW's state as flat fp32 partitions, one slice per rank (stages 1-3), so a checkpoint
written from it would only load into the same stage and world size. `gather_optimizer_state`
assembles each parameter's full `exp_avg` / `exp_avg_sq` (DeepSpeed's tensor-fragment API, a
collective: every rank calls it) and writes them under the parameter's name, exactly as
`torch.distributed.checkpoint.state_dict` does for the single-process and FSDP2 engines;
`scatter_optimizer_state` writes such a state back into the partitions.

Two details of DeepSpeed 0.19 this works around:
- stages 1/2 link each parameter to its slice of the optimizer state once, after the first step of
  the first parameter group, when the other groups' state does not exist yet; `_relink` links again
  before every read or write (the value head is a second group);
- AdamW's state is created lazily by the first step; `_materialise` creates it (zeros, step 0) so a
  checkpoint can be loaded before any step, as on resume.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

STATE_KEYS = ("exp_avg", "exp_avg_sq")
"""AdamW's per-parameter tensors (the step counter is one per partition, shared by the group)."""


def _base(zero_optimizer) -> torch.optim.Optimizer:
    """The torch optimizer stepping the flat fp32 partitions inside a ZeRO optimizer."""
    return zero_optimizer.optimizer


def _relink(zero_optimizer) -> None:
    """Stages 1/2: point every parameter's state fragments at the current flat state tensors."""
    if hasattr(zero_optimizer, "_hp_optimizer_states_linked") and _base(zero_optimizer).state:
        zero_optimizer._hp_optimizer_states_linked = False
        zero_optimizer._lazy_init_hp_params_optimizer_state()


def flat_partitions(zero_optimizer) -> list[torch.Tensor]:
    """This rank's flat fp32 partitions, the tensors AdamW steps (stages 1/2 and 3 name them differently;
    stage 3 lends them to the torch optimizer's param groups only during its step)."""
    for attribute in ("single_partition_of_fp32_groups", "fp32_partitioned_groups_flat"):
        if hasattr(zero_optimizer, attribute):
            return list(getattr(zero_optimizer, attribute))
    raise TypeError(f"{type(zero_optimizer).__name__} is not a DeepSpeed ZeRO optimizer this module knows")


def _materialise(zero_optimizer) -> None:
    """Create AdamW's state (zeros, step 0) for partitions that have none yet."""
    base = _base(zero_optimizer)
    for flat in flat_partitions(zero_optimizer):
        if not base.state.get(flat):
            base.state[flat] = {"step": torch.tensor(0.0), **{k: torch.zeros_like(flat) for k in STATE_KEYS}}


def _step_count(zero_optimizer) -> torch.Tensor:
    steps = [s["step"] for s in _base(zero_optimizer).state.values() if "step" in s]
    return torch.as_tensor(max((float(s) for s in steps), default=0.0))


def gather_optimizer_state(zero_optimizer, named_params: Iterable[tuple[str, nn.Parameter]],
                           groups: list[dict[str, Any]]) -> dict[str, Any]:
    """The full state keyed by parameter name, on the CPU (collective: every rank calls it).

    `groups` are the client optimizer's groups as built (hyperparameters and `params` names);
    their current learning rates are read from the ZeRO optimizer.
    """
    from deepspeed.utils import safe_get_full_optimizer_state

    base = _base(zero_optimizer)
    state: dict[str, Any] = {}
    if base.state:
        _relink(zero_optimizer)
        step = _step_count(zero_optimizer)
        for name, param in named_params:
            entry = {"step": step.clone()}
            for key in STATE_KEYS:
                full = safe_get_full_optimizer_state(param, key)
                entry[key] = full.detach().reshape(_full_shape(param)).to("cpu", copy=True)
            state[name] = entry
    param_groups = []
    for index, group in enumerate(groups):
        hyper = {k: v for k, v in group.items() if k != "params"}
        hyper.update({k: v for k, v in zero_optimizer.param_groups[index].items() if k in ("lr", "betas", "eps",
                                                                                             "weight_decay")})
        param_groups.append({**hyper, "params": list(group["params"])})
    return {"state": state, "param_groups": param_groups}


def scatter_optimizer_state(zero_optimizer, named_params: Iterable[tuple[str, nn.Parameter]],
                            state: dict[str, Any]) -> None:
    """Write a name-keyed full state into this rank's partitions (every rank calls it with the same state)."""
    named = list(named_params)
    missing = [name for name, _ in named if name not in state["state"]]
    if state["state"] and missing:
        raise KeyError(f"the optimizer checkpoint has no state for {missing[:3]} (and {max(len(missing) - 3, 0)} "
                       "more): it was written for another model or LoRA setting")
    for index, saved in enumerate(state.get("param_groups", [])):
        if index < len(zero_optimizer.param_groups):
            for key in ("lr", "betas", "eps", "weight_decay"):
                if key in saved:
                    zero_optimizer.param_groups[index][key] = saved[key]
    if not state["state"]:
        return
    _materialise(zero_optimizer)
    _relink(zero_optimizer)
    for name, param in named:
        for key in STATE_KEYS:
            value = state["state"][name][key]
            _set_full(param, value.to(torch.float32).reshape(-1), key)
    step = max(float(entry["step"]) for entry in state["state"].values())
    for flat_state in _base(zero_optimizer).state.values():
        flat_state["step"] = torch.tensor(step)


def _set_full(param: nn.Parameter, value: torch.Tensor, key: str) -> None:
    """Write this rank's slice of a parameter's full state `value` (flat).

    Stage 3 slices are padded to equal sizes, and DeepSpeed's own full setter does not pad the value
    (a 1-element bias over 2 ranks fails), so this pads it and writes the local slice itself.
    """
    from deepspeed.utils import safe_set_full_optimizer_state, safe_set_local_optimizer_state

    partition = getattr(param, "ds_tensor", None)
    if partition is None:
        safe_set_full_optimizer_state(param, value, key)
        return
    import torch.distributed as dist

    size = partition.numel()
    padded = torch.zeros(size * dist.get_world_size(), dtype=value.dtype)
    padded[: value.numel()] = value
    safe_set_local_optimizer_state(param, padded.narrow(0, size * dist.get_rank(), size).clone(), key)


def _full_shape(param: nn.Parameter) -> torch.Size:
    """A parameter's unpartitioned shape (ZeRO-3 keeps it in `ds_shape`)."""
    return getattr(param, "ds_shape", param.shape)


__all__ = ["flat_partitions", "gather_optimizer_state", "scatter_optimizer_state"]
