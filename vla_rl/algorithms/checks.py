"""Input checks shared by the algorithm functions: stray gradients, shapes, dtypes.

Every message names the offending input and says what produces a correct one.
"""

from __future__ import annotations

from typing import Sequence

import torch


def require_detached(name: str, tensor: torch.Tensor | None, fix: str = "") -> None:
    """Refuse a stored input (old log-probs, advantages, returns...) that still requires grad."""
    if tensor is not None and tensor.requires_grad:
        hint = fix or "store it with .detach() (rollout quantities are constants in the loss)"
        raise ValueError(f"{name} requires grad; {hint}")


def require_shape(name: str, tensor: torch.Tensor, shape: Sequence[int | None], what: str) -> None:
    """Check `tensor.shape` against `shape` (None matches any size); `what` describes the layout."""
    if tensor is None:
        raise ValueError(f"{name} is missing: {what}")
    ok = tensor.dim() == len(shape) and all(s is None or s == t for s, t in zip(shape, tensor.shape))
    if not ok:
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} has shape {tuple(tensor.shape)}, expected {want}: {what}")


def require_bool(name: str, tensor: torch.Tensor) -> None:
    """Masks and done flags are bool tensors (a float mask hides bugs such as a 0.5 weight)."""
    if tensor.dtype != torch.bool:
        raise ValueError(f"{name} must be a bool tensor, got {tensor.dtype}; convert with `.bool()`")
