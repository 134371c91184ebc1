"""The OpenVLA-style network: vision towers -> projector -> patches spliced after BOS -> Llama -> heads.

Module names follow the published checkpoint (`vision_backbone.featurizer`, `.fused_featurizer`,
`projector.fc1..fc3`, `language_model`), plus our `value_head`. Sequences are laid out as
`[BOS][patches][pad..][prompt][action tokens]`; positions come from the attention mask, so the pads
(masked) change nothing. Action logits are computed only for the 256 action ids (a slice of the LM
head), the same way when sampling and when scoring.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import Dinov2WithRegistersConfig, LlamaConfig, LlamaForCausalLM, SiglipVisionConfig

from vla_rl.models.action_codec import N_BINS
from vla_rl.models.openvla.vision import FusedMLPProjector, FusedVisionBackbone
from vla_rl.models.value_head import ValueHead


def positions_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip padding: cumsum of the mask minus one (pads get their left neighbour's)."""
    return (mask.long().cumsum(dim=-1) - 1).clamp(min=0)


class OpenVLANetwork(nn.Module):
    """Parameters and forward pieces; the policy (policy.py) owns decoding and the action codec."""

    def __init__(self, dino: Dinov2WithRegistersConfig, siglip: SiglipVisionConfig, text: LlamaConfig,
                 first_action_id: int, value_hidden: int | None) -> None:
        super().__init__()
        self.vision_backbone = FusedVisionBackbone(dino, siglip)
        self.projector = FusedMLPProjector(self.vision_backbone.embed_dim, text.hidden_size)
        text._attn_implementation = "sdpa"
        self.language_model = LlamaForCausalLM(text)
        self.value_head = ValueHead(text.hidden_size, value_hidden) if value_hidden else None
        self.first_action_id = first_action_id
        if first_action_id + N_BINS > text.vocab_size:
            raise ValueError(f"action ids end at {first_action_id + N_BINS} beyond the LM vocabulary {text.vocab_size}")

    @property
    def num_patches(self) -> int:
        return self.vision_backbone.num_patches

    def embed_ids(self, ids: torch.Tensor) -> torch.Tensor:
        return self.language_model.get_input_embeddings()(ids)

    def prefix(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings (N, 1 + P + L - 1, H) and mask of `[BOS][patches][rest of input_ids]`."""
        patches = self.projector(self.vision_backbone(images))
        tokens = self.embed_ids(input_ids)
        embeds = torch.cat([tokens[:, :1], patches.to(tokens.dtype), tokens[:, 1:]], dim=1)
        ones = attention_mask.new_ones(attention_mask.shape[0], patches.shape[1])
        return embeds, torch.cat([attention_mask[:, :1], ones, attention_mask[:, 1:]], dim=1)

    def backbone(self, embeds: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache=None) -> torch.Tensor:
        """Last-layer hidden states (N, T, H) of the LM (appending to `cache` when given)."""
        out = self.language_model.model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions,
                                        cache=cache, use_cache=cache is not None)
        return out.last_hidden_state

    def action_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., H) -> (..., 256) float32 logits over the action ids (restricted index order)."""
        weight = self.language_model.get_output_embeddings().weight[self.first_action_id:self.first_action_id + N_BINS]
        return (hidden @ weight.t()).float()

    def value(self, hidden_last_prompt: torch.Tensor) -> torch.Tensor | None:
        return None if self.value_head is None else self.value_head(hidden_last_prompt)


__all__ = ["OpenVLANetwork", "positions_from_mask"]
