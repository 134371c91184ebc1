"""OpenVLA's vision side: fused DINOv2 + SigLIP patch features (channel concat) and the MLP projector."""

from __future__ import annotations

import torch
from torch import nn
from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel, SiglipVisionConfig, SiglipVisionModel

from vla_rl.models.images import OPENVLA_DINO_MEAN, OPENVLA_DINO_STD, SIGLIP_MEAN, SIGLIP_STD, normalise_pixels


class FusedVisionBackbone(nn.Module):
    """`featurizer` (DINOv2 with registers) and `fused_featurizer` (SigLIP); patch tokens concatenated on channels.

    Each tower's features are the pre-norm output of its last built block (the towers are built
    without OpenVLA's unused last block, see spec.py), so the final norms are not part of the model.
    """

    def __init__(self, dino: Dinov2WithRegistersConfig, siglip: SiglipVisionConfig) -> None:
        super().__init__()
        self.featurizer = Dinov2WithRegistersModel(dino)
        self.fused_featurizer = SiglipVisionModel(siglip)
        # Never used on this path: the final norms (features are read before them) and the MAE mask token.
        self.featurizer.layernorm = nn.Identity()
        self.fused_featurizer.post_layernorm = nn.Identity()
        del self.featurizer.embeddings.mask_token
        # timm's reg4 DINOv2 gives the class token no position embedding (no_embed_class); match it.
        with torch.no_grad():
            self.featurizer.embeddings.position_embeddings[:, :1].zero_()
        self.num_prefix = 1 + dino.num_register_tokens
        self.embed_dim = dino.hidden_size + siglip.hidden_size
        self.num_patches = (dino.image_size // dino.patch_size) ** 2

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) uint8 -> (N, num_patches, dino_hidden + siglip_hidden)."""
        dtype = next(self.parameters()).dtype
        x_dino = normalise_pixels(images, OPENVLA_DINO_MEAN, OPENVLA_DINO_STD, dtype)
        x_sig = normalise_pixels(images, SIGLIP_MEAN, SIGLIP_STD, dtype)
        f_dino = self.featurizer.encoder(self.featurizer.embeddings(x_dino)).last_hidden_state[:, self.num_prefix:]
        f_sig = self.fused_featurizer.encoder(inputs_embeds=self.fused_featurizer.embeddings(x_sig)).last_hidden_state
        return torch.cat([f_dino, f_sig], dim=-1)


class FusedMLPProjector(nn.Module):
    """OpenVLA's "fused-gelu-mlp": fc1 (vision -> 4 vision), GELU, fc2 (-> llm), GELU, fc3 (llm -> llm)."""

    def __init__(self, vision_dim: int, llm_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(vision_dim, 4 * vision_dim)
        self.fc2 = nn.Linear(4 * vision_dim, llm_dim)
        self.fc3 = nn.Linear(llm_dim, llm_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(nn.functional.gelu(self.fc2(nn.functional.gelu(self.fc1(x)))))


__all__ = ["FusedMLPProjector", "FusedVisionBackbone"]
