"""Precision and memory helpers of the family builders: build in the target dtype, gradient checkpointing.

`default_dtype(dtype)` makes new floating-point parameters (and any tensor created without a dtype)
`dtype` while a network is constructed, so a bfloat16 7b model is never materialised in float32
(30 GB and minutes of CPU initialisation). `set_gradient_checkpointing(modules, on)` turns on
transformers' per-layer checkpointing (non-reentrant, so frozen inputs and LoRA work) in each
transformers model given; it acts in training mode only, as transformers' layers check
`self.training`.
"""

from __future__ import annotations

import contextlib
from typing import Iterable, Iterator

import torch
from torch import nn


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """torch's default floating dtype is `dtype` inside the block."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def set_gradient_checkpointing(models: Iterable[nn.Module], on: bool) -> None:
    """Checkpoint every layer of these transformers models (recompute activations in the backward)."""
    for model in models:
        # transformers 5.24 renamed gradient_* to activation_checkpointing_*; older 5.x only has the first
        kwargs = {"use_reentrant": False}
        if on and hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        elif on:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        else:
            disable = getattr(model, "activation_checkpointing_disable", None) or model.gradient_checkpointing_disable
            disable()


__all__ = ["default_dtype", "set_gradient_checkpointing"]
