"""The critic: a small MLP on one hidden state of the policy's backbone, returning one value."""

from __future__ import annotations

import torch
from torch import nn


class ValueHead(nn.Module):
    """Linear -> GELU -> Linear(1); the last layer starts near zero so early values are ~0."""

    def __init__(self, in_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, 1)
        nn.init.normal_(self.fc2.weight, std=0.01)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """(N, in_dim) -> (N,) float32."""
        return self.fc2(torch.nn.functional.gelu(self.fc1(h.to(self.fc1.weight.dtype)))).squeeze(-1).float()


__all__ = ["ValueHead"]
