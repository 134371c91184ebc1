"""OpenVLA-OFT's continuous action head: an MLP with residual blocks, trained with an L1 loss.

It reads the K*A action-slot hidden states, regroups them per action step (the A slots of step k,
concatenated: A*H features) and regresses one normalised action per step. Module and parameter names
follow openvla-oft's `L1RegressionActionHead` (`model.layer_norm1`, `model.fc1`,
`model.mlp_resnet_blocks.<i>.ffn.{0,1}`, `model.layer_norm2`, `model.fc2`), so the published
`action_head--*checkpoint.pt` state dicts load as they are. The released LIBERO heads use 2 blocks and a
hidden width equal to the LLM's (4096).
"""

from __future__ import annotations

import torch
from torch import nn


class MLPResNetBlock(nn.Module):
    """x + ReLU(Linear(LayerNorm(x))) (pre-norm feed-forward block)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.ffn = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.ffn(x)


class MLPResNet(nn.Module):
    """LayerNorm -> Linear -> ReLU -> residual blocks -> LayerNorm -> Linear."""

    def __init__(self, num_blocks: int, input_dim: int, hidden_dim: int, output_dim: int) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(input_dim)
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.relu = nn.ReLU()
        self.mlp_resnet_blocks = nn.ModuleList(MLPResNetBlock(hidden_dim) for _ in range(num_blocks))
        self.layer_norm2 = nn.LayerNorm(hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.fc1(self.layer_norm1(x)))
        for block in self.mlp_resnet_blocks:
            x = block(x)
        return self.fc2(self.layer_norm2(x))


class L1RegressionHead(nn.Module):
    """(N, K*A, H) action-slot hidden states -> (N, K, A) normalised actions (float32)."""

    def __init__(self, llm_dim: int, hidden_dim: int, action_dim: int, num_blocks: int = 2) -> None:
        super().__init__()
        self.action_dim = action_dim
        self.model = MLPResNet(num_blocks, llm_dim * action_dim, hidden_dim, action_dim)

    def forward(self, slots: torch.Tensor) -> torch.Tensor:
        n = slots.shape[0]
        grouped = slots.reshape(n, -1, self.action_dim * slots.shape[-1])
        return self.model(grouped.to(self.model.fc1.weight.dtype)).float()


def head_dims(state: dict[str, torch.Tensor], llm_dim: int) -> dict[str, int]:
    """(action_dim, hidden_dim, num_blocks) of a saved head's state dict, checked against `llm_dim`."""
    try:
        in_dim = state["model.layer_norm1.weight"].shape[0]
        hidden, out = state["model.fc1.weight"].shape[0], state["model.fc2.weight"].shape[0]
    except KeyError as exc:
        raise ValueError(f"not an L1-regression head state dict: no {exc.args[0]!r}; keys {sorted(state)[:6]}") from None
    if in_dim != out * llm_dim:
        raise ValueError(f"the head reads {in_dim} features, but {out} action dims x the LLM width {llm_dim} = "
                         f"{out * llm_dim}; it belongs to another model")
    blocks = len({k.split(".")[2] for k in state if k.startswith("model.mlp_resnet_blocks.")})
    return {"action_dim": out, "hidden_dim": hidden, "num_blocks": blocks}


__all__ = ["L1RegressionHead", "MLPResNet", "MLPResNetBlock", "head_dims"]
