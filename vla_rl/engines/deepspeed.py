"""The DeepSpeed ZeRO training engine (`placement.engine=deepspeed`, `placement.zero_stage` 1, 2 or 3).

`deepspeed.initialize` wraps the policy with a `torch.optim.AdamW` over the same parameter groups as
the other engines (the value head at `algorithm.value_lr`) and clips by the global gradient norm
(`algorithm.max_grad_norm`). Stage 1 partitions the optimizer state over the ranks of the default
`torch.distributed` group, stage 2 also the gradients, stage 3 also the parameters. As with FSDP2,
each rank evaluates its share of the batch and gradients are averaged over ranks.

The learner calls `engine.policy.evaluate(...)`: `policy` here is a `DeepSpeedPolicy`, which runs
`evaluate` through DeepSpeed's `forward` (its backward bookkeeping and ZeRO-3's parameter gathering
hook into `forward`). Checkpoints have the other engines' format: `full_model_state()` gathers the
weights for `save_pretrained`, `state_dict()` the optimizer state keyed by parameter name
(`vla_rl.engines.zero_state`), and both load back on resume, whatever engine wrote them.

On a machine without a GPU DeepSpeed runs on its CPU accelerator over the gloo group the caller
initialised (`DS_ACCELERATOR=cpu` is set when CUDA is absent); the first `deepspeed.initialize` on a
machine JIT-compiles DeepSpeed's shared-memory communication op (about 100 s here, then cached in
~/.cache/torch_extensions). The client AdamW is torch's, so no DeepSpeed optimizer op is compiled.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from vla_rl.engines.base import move_optimizer_state, param_groups
from vla_rl.engines.registry import ENGINES, require_process_group
from vla_rl.engines.zero_state import flat_partitions, gather_optimizer_state, scatter_optimizer_state

ZERO_STAGES = (1, 2, 3)
DEFAULT_ZERO_STAGE = 2
PREFIX = "policy."
"""Parameter-name prefix DeepSpeed sees (the policy sits inside `EvaluateForward`)."""


class EvaluateForward(nn.Module):
    """The module DeepSpeed wraps: `forward` is the policy's `evaluate`, returning plain tensors so
    DeepSpeed can hook the outputs' backward."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, forward_inputs: dict[str, torch.Tensor], temperature: float = 1.0):
        out = self.policy.evaluate(forward_inputs, temperature=temperature)
        return out.logprobs, out.entropy, out.values


class DeepSpeedPolicy:
    """The trained policy as the learner sees it: `evaluate` through DeepSpeed, the rest from the policy."""

    def __init__(self, ds_engine) -> None:
        self._ds = ds_engine

    @property
    def module(self) -> nn.Module:
        """The policy itself (its parameters partitioned under ZeRO-3)."""
        return self._ds.module.policy

    def evaluate(self, forward_inputs: dict[str, torch.Tensor], temperature: float = 1.0):
        from vla_rl.models.base import EvaluateOutput

        logprobs, entropy, values = self._ds(forward_inputs, temperature=temperature)
        return EvaluateOutput(logprobs=logprobs, entropy=entropy, values=values)

    def train(self, mode: bool = True) -> "DeepSpeedPolicy":
        self._ds.train(mode)
        return self

    def eval(self) -> "DeepSpeedPolicy":
        return self.train(False)

    def __getattr__(self, name: str) -> Any:
        if name == "_ds":
            raise AttributeError(name)
        return getattr(self.module, name)


def deepspeed_config(zero_stage: int, max_grad_norm: float | None, dtype: torch.dtype) -> dict[str, Any]:
    """The DeepSpeed config of one actor rank: one micro-batch per step, ZeRO `zero_stage`, clipping."""
    return {
        "train_micro_batch_size_per_gpu": 1,  # DeepSpeed's bookkeeping only: the learner sizes its minibatches
        "gradient_accumulation_steps": 1,
        "gradient_clipping": 0.0 if max_grad_norm is None else float(max_grad_norm),
        "zero_optimization": {"stage": zero_stage},
        "bf16": {"enabled": dtype == torch.bfloat16},
        "fp16": {"enabled": dtype == torch.float16},
        "steps_per_print": 2**62,
        "wall_clock_breakdown": False,
    }


def _import_deepspeed():
    """`deepspeed`, imported with what it needs on this machine (its CPU accelerator without CUDA, LOCAL_RANK)."""
    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    os.environ.setdefault("LOCAL_RANK", str(dist.get_rank()))  # torchrun sets it; DeepSpeed insists on it
    import deepspeed

    logging.getLogger("DeepSpeed").setLevel(logging.WARNING)
    return deepspeed


class DeepSpeedEngine:
    """Steps a policy with DeepSpeed ZeRO; see the module docstring."""

    def __init__(self, policy: nn.Module, lr: float, value_lr: float, weight_decay: float,
                 max_grad_norm: float | None, zero_stage: int = DEFAULT_ZERO_STAGE) -> None:
        if zero_stage not in ZERO_STAGES:
            raise ValueError(f"zero_stage={zero_stage} must be one of {ZERO_STAGES}")
        if not dist.is_initialized():
            raise RuntimeError("the deepspeed engine needs torch.distributed initialised (torchrun, or "
                               "dist.init_process_group('gloo') on CPU); use placement.engine=single for one process")
        deepspeed = _import_deepspeed()
        self.zero_stage = zero_stage
        self.max_grad_norm = max_grad_norm
        groups = param_groups(policy, lr, value_lr)
        names = {id(p): n for n, p in policy.named_parameters()}
        self._groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [names[id(p)] for p in g["params"]]}
                        for g in groups]
        optimizer = torch.optim.AdamW(groups, weight_decay=weight_decay)
        dtype = next(policy.parameters()).dtype
        self._ds, self.optimizer, _, _ = deepspeed.initialize(
            model=EvaluateForward(policy), optimizer=optimizer,
            config=deepspeed_config(zero_stage, max_grad_norm, dtype))
        self.policy = DeepSpeedPolicy(self._ds)
        trainable = {n for g in self._groups for n in g["params"]}
        self._trainable = [(n, p) for n, p in self.policy.module.named_parameters() if n in trainable]

    def step(self, loss: torch.Tensor) -> dict[str, float]:
        """Backward (gradients averaged over ranks), clip by the global norm, step; returns the norm before clipping."""
        self._ds.backward(loss)
        self._ds.step()
        norm = self._ds.get_global_grad_norm()
        return {"train/grad_norm": float(norm) if norm is not None else float("nan")}

    def offload(self) -> None:
        """Move the (partitioned) AdamW state to host memory (no-op on CPU)."""
        move_optimizer_state(self.optimizer.optimizer, torch.device("cpu"))

    def onload(self) -> None:
        flats = flat_partitions(self.optimizer)
        if flats:
            move_optimizer_state(self.optimizer.optimizer, flats[0].device)

    def state_dict(self) -> dict[str, Any]:
        """The full AdamW state keyed by parameter name (collective: every rank must call it)."""
        return gather_optimizer_state(self.optimizer, self._trainable, self._groups)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if any(isinstance(k, int) for k in state.get("state", {})):
            raise ValueError("this optimizer checkpoint is in torch's positional format (an old single-process "
                             "checkpoint); the deepspeed engine loads the name-keyed format only: resume it once "
                             "with placement.engine=single and save again")
        scatter_optimizer_state(self.optimizer, self._trainable, state)

    def full_model_state(self) -> dict[str, torch.Tensor]:
        """The whole weights on the CPU, keyed like the policy's state_dict (collective under ZeRO-3)."""
        import deepspeed

        module = self.policy.module
        with deepspeed.zero.GatheredParameters(list(module.parameters())):
            return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}

    def load_model_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load whole weights (every rank passes the same `state`), then refresh ZeRO's fp32 master copy."""
        import deepspeed

        module = self.policy.module
        with deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=0):
            module.load_state_dict(state)
        self.optimizer.refresh_fp32_params()


@ENGINES.register("deepspeed")
def build_deepspeed(config, policy: nn.Module) -> DeepSpeedEngine:
    require_process_group("deepspeed")
    algo, stage = config.algorithm, config.placement.zero_stage
    return DeepSpeedEngine(policy, lr=algo.lr, value_lr=algo.value_lr, weight_decay=algo.weight_decay,
                           max_grad_norm=algo.max_grad_norm, zero_stage=DEFAULT_ZERO_STAGE if stage is None else stage)


__all__ = ["DEFAULT_ZERO_STAGE", "DeepSpeedEngine", "DeepSpeedPolicy", "ZERO_STAGES", "deepspeed_config"]
