"""The OFT network: OpenVLA's parts plus a proprio projector, several images, and a parallel action block.

Sequence: `[BOS][patches of each camera][proprio][pads][prompt][K*A zero slots][EOS]`. The slots are
zero vectors that differ only by position (as in OpenVLA-OFT). Attention inside the action block
(slots + EOS) is bidirectional; over the prompt it is causal by default, or bidirectional everywhere
(`bidirectional_prompt`, what released OFT checkpoints were trained with). The hidden state that
scores slot i is the one just before it (OFT's shifted readout: the last prompt token for slot 0),
and logits are restricted to the 256 action ids, so the chunk's log-prob is exact: the slots are
conditionally independent given the prompt. With OFT's continuous head (`l1_head`, plus the learned
`action_scale` of its sampling distribution) the same slot states are regressed to actions instead,
and the LM head is not used (its weight is frozen).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import Dinov2WithRegistersConfig, LlamaConfig, SiglipVisionConfig

from vla_rl.models.continuous import ActionScale
from vla_rl.models.openvla.network import OpenVLANetwork, positions_from_mask
from vla_rl.models.openvla_oft.l1_head import L1RegressionHead


class ProprioProjector(nn.Module):
    """OFT's proprio projector: fc1 (P -> H), GELU, fc2 (H -> H); one token per step."""

    def __init__(self, proprio_dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(proprio_dim, hidden)
        self.fc2 = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(nn.functional.gelu(self.fc1(x)))


def action_block_mask(valid: torch.Tensor, block_start: int, bidirectional_prompt: bool, dtype: torch.dtype) -> torch.Tensor:
    """Additive (N, 1, T, T) mask: padding keys hidden; causal before `block_start` unless
    `bidirectional_prompt`; every position of the action block sees the whole block."""
    n, t = valid.shape
    idx = torch.arange(t, device=valid.device)
    if bidirectional_prompt:
        allowed = torch.ones(t, t, dtype=torch.bool, device=valid.device)
    else:
        in_block = idx >= block_start
        allowed = (idx[None, :] <= idx[:, None]) | (in_block[:, None] & in_block[None, :])
    allowed = allowed[None] & valid.bool()[:, None, :]
    zero = torch.zeros((), dtype=dtype, device=valid.device)
    return torch.where(allowed, zero, torch.finfo(dtype).min)[:, None]


class OFTNetwork(OpenVLANetwork):
    """OpenVLANetwork + proprio projector + parallel action block (see the module docstring)."""

    def __init__(self, dino: Dinov2WithRegistersConfig, siglip: SiglipVisionConfig, text: LlamaConfig,
                 first_action_id: int, value_hidden: int | None, proprio_dim: int, eos_token_id: int,
                 bidirectional_prompt: bool, l1_head: dict[str, Any] | None = None) -> None:
        """`l1_head`: None for action tokens, else {"action_dim", "hidden_dim", "num_blocks", "scale", "learn_scale"}."""
        super().__init__(dino, siglip, text, first_action_id, value_hidden)
        self.proprio_projector = ProprioProjector(proprio_dim, text.hidden_size) if proprio_dim else None
        self.eos_token_id = eos_token_id
        self.bidirectional_prompt = bidirectional_prompt
        self.action_head = self.action_scale = None
        if l1_head is not None:
            self.action_head = L1RegressionHead(text.hidden_size, int(l1_head["hidden_dim"]), int(l1_head["action_dim"]),
                                                int(l1_head["num_blocks"]))
            self.action_scale = ActionScale(int(l1_head["action_dim"]), float(l1_head["scale"]), bool(l1_head["learn_scale"]))
            self.language_model.get_output_embeddings().weight.requires_grad_(False)

    def prefix_multi(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, images: torch.Tensor,
                     proprio: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """`[BOS][patches cam 1..C][proprio][rest of input_ids]` from images (N, C, 3, S, S)."""
        n, c = images.shape[:2]
        patches = self.projector(self.vision_backbone(images.flatten(0, 1)))
        patches = patches.view(n, c * patches.shape[1], patches.shape[2])
        tokens = self.embed_ids(input_ids)
        parts = [tokens[:, :1], patches.to(tokens.dtype)]
        if self.proprio_projector is not None:
            if proprio is None:
                raise ValueError("this policy was built with proprio input; pass obs['proprio']")
            parts.append(self.proprio_projector(proprio.to(tokens.dtype)).unsqueeze(1))
        extra = sum(p.shape[1] for p in parts[1:])
        ones = attention_mask.new_ones(n, extra)
        return torch.cat(parts + [tokens[:, 1:]], dim=1), torch.cat([attention_mask[:, :1], ones, attention_mask[:, 1:]], 1)

    def chunk_hidden(self, embeds: torch.Tensor, mask: torch.Tensor, n_slots: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states that score the `n_slots` action slots (N, n_slots, H) and the last prompt state (N, H)."""
        n, t, h = embeds.shape
        slots = embeds.new_zeros(n, n_slots, h)
        eos = self.embed_ids(torch.full((n, 1), self.eos_token_id, dtype=torch.long, device=embeds.device))
        seq = torch.cat([embeds, slots, eos], dim=1)
        valid = torch.cat([mask, mask.new_ones(n, n_slots + 1)], dim=1)
        attn = action_block_mask(valid, t, self.bidirectional_prompt, seq.dtype)
        hidden = self.backbone(seq, attn, positions_from_mask(valid))
        return hidden[:, t - 1:t - 1 + n_slots], hidden[:, t - 1]


__all__ = ["OFTNetwork", "ProprioProjector", "action_block_mask"]
