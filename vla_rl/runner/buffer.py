"""Preallocated (T, N, ...) rollout storage, filled step by step and flattened for minibatches.

Tensors are allocated on the first `add` from the shapes of what the policy and environment return,
so the buffer needs no knowledge of a model family's inputs.
"""

from __future__ import annotations

from typing import Iterator

import torch


class RolloutBuffer:
    """Holds one rollout window: up to T policy calls for N environments (`t` of them filled)."""

    def __init__(self, steps: int, num_envs: int, device: torch.device | str = "cpu") -> None:
        self.steps = steps
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.data: dict[str, torch.Tensor] = {}
        self.forward_inputs: dict[str, torch.Tensor] = {}
        self.t = 0

    def _store(self, table: dict[str, torch.Tensor], key: str, t: int, value: torch.Tensor) -> None:
        value = torch.as_tensor(value).to(self.device)
        if key not in table:
            table[key] = torch.zeros((self.steps, *value.shape), dtype=value.dtype, device=self.device)
        target = table[key]
        if target.shape[1:] != value.shape:
            raise ValueError(
                f"rollout field {key!r} changed shape from {tuple(target.shape[1:])} to {tuple(value.shape)} "
                "inside one rollout window; a policy must return the same input shapes every step"
            )
        target[t] = value

    def add(self, forward_inputs: dict[str, torch.Tensor], **fields: torch.Tensor) -> None:
        """Store step `t`: the policy's forward inputs and named per-step fields (each (N, ...))."""
        if self.t >= self.steps:
            raise IndexError(f"rollout buffer is full ({self.steps} steps); call reset() first")
        for key, value in forward_inputs.items():
            self._store(self.forward_inputs, key, self.t, value)
        for key, value in fields.items():
            self._store(self.data, key, self.t, value)
        self.t += 1

    def reset(self) -> None:
        self.t = 0

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.data[key]

    def __setitem__(self, key: str, value: torch.Tensor) -> None:
        self.data[key] = value

    def view(self, key: str) -> torch.Tensor:
        """Field `key` over the filled steps, (t, N, ...)."""
        return self.data[key][: self.t]

    def flat(self, key: str) -> torch.Tensor:
        """Field `key` over the filled steps with (t, N) merged into one batch dimension."""
        value = self.data[key][: self.t]
        return value.reshape(self.t * self.num_envs, *value.shape[2:])

    def flat_forward_inputs(self) -> dict[str, torch.Tensor]:
        return {k: v[: self.t].reshape(self.t * self.num_envs, *v.shape[2:]) for k, v in self.forward_inputs.items()}

    def minibatches(self, num_minibatches: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """Random index sets over the flattened t*N samples (the last one takes the remainder)."""
        total = self.t * self.num_envs
        if num_minibatches > total:
            raise ValueError(f"num_minibatches={num_minibatches} exceeds the {total} samples of a rollout")
        order = torch.randperm(total, generator=generator)
        yield from torch.tensor_split(order, num_minibatches)
