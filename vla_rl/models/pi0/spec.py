"""Architecture of the pi0 family: size presets and the transformers configs built from them.

A preset names the dims of the three transformers: the SigLIP vision tower, the Gemma language
model of the PaliGemma prefix, and the Gemma action expert, which has the LM's depth, heads,
key/value heads and head size (each expert layer attends over the LM layer's keys and values) but
its own width and MLP. `pi0` and `pi05` are the published sizes (PaliGemma 3B = SigLIP So400m/14
at 224 px + Gemma 2B, and a Gemma 300M expert; openpi's `gemma_2b` / `gemma_300m` variants);
`pi05` conditions the expert on the flow time through adaptive RMS norms (adaRMS) instead of
mixing the time into the action tokens, and reads the state as text in the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import GemmaConfig, PaliGemmaConfig, SiglipVisionConfig


@dataclass(frozen=True)
class Pi0Size:
    """Dims of one size preset."""

    image_size: int
    """Square input side."""
    patch_size: int
    """SigLIP patch side."""
    vision_width: int
    """SigLIP width."""
    vision_layers: int
    """SigLIP blocks."""
    vision_heads: int
    """SigLIP attention heads."""
    vision_mlp: int
    """SigLIP MLP width."""
    width: int
    """Gemma LM width (the prefix's token size)."""
    layers: int
    """Gemma LM blocks, and the expert's."""
    heads: int
    """Attention heads (LM and expert)."""
    kv_heads: int
    """Key/value heads (LM and expert)."""
    head_dim: int
    """Size of one head (LM and expert)."""
    mlp: int
    """Gemma LM MLP width."""
    expert_width: int
    """Action expert width."""
    expert_mlp: int
    """Action expert MLP width."""
    vocab_size: int | None
    """LM vocabulary (257152 for PaliGemma); None: the tiny tokenizer's, rounded up to 64."""
    max_action_dim: int | None
    """Action vectors are zero-padded to this size (32 in openpi); None: the environment's action size."""
    max_state_dim: int | None
    """Proprio vectors are zero-padded to this size (32 in openpi); None: the environment's proprio size."""
    value_hidden: int
    """Width of the value head's hidden layer."""
    noise_hidden: int
    """Width of the flow_noise head's hidden layer."""
    pi05: bool = False
    """pi0.5 variant: adaRMS time conditioning in the expert, state as prompt text (no state token)."""


SIZES: dict[str, Pi0Size] = {
    # CPU-sized: 16 patches of 16 px, two blocks per transformer, a 32-wide expert.
    "tiny": Pi0Size(64, 16, 64, 2, 2, 128, 64, 2, 2, 1, 32, 128, 32, 64, None, None, None, 64, 32),
    "tiny-pi05": Pi0Size(64, 16, 64, 2, 2, 128, 64, 2, 2, 1, 32, 128, 32, 64, None, None, None, 64, 32, pi05=True),
    # openpi pi0: PaliGemma 3B (SigLIP So400m/14, Gemma 2B) + Gemma 300M expert; GPU use and the memory plan.
    "pi0": Pi0Size(224, 14, 1152, 27, 16, 4304, 2048, 18, 8, 1, 256, 16384, 1024, 4096, 257152, 32, 32, 1024, 128),
    "pi05": Pi0Size(224, 14, 1152, 27, 16, 4304, 2048, 18, 8, 1, 256, 16384, 1024, 4096, 257152, 32, 32, 1024, 128,
                    pi05=True),
}


def siglip_config(size: Pi0Size) -> SiglipVisionConfig:
    """SigLIP tower as PaliGemma builds it (patch features, no pooling head)."""
    return SiglipVisionConfig(
        hidden_size=size.vision_width, num_hidden_layers=size.vision_layers, num_attention_heads=size.vision_heads,
        intermediate_size=size.vision_mlp, image_size=size.image_size, patch_size=size.patch_size,
        hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, vision_use_head=False,
    )


def gemma_config(size: Pi0Size, vocab_size: int, expert: bool, pad_token_id: int = 0) -> GemmaConfig:
    """The LM's (expert=False) or the action expert's Gemma config (RMSNorm eps 1e-6, tanh GELU)."""
    return GemmaConfig(
        vocab_size=vocab_size, hidden_size=size.expert_width if expert else size.width,
        intermediate_size=size.expert_mlp if expert else size.mlp, num_hidden_layers=size.layers,
        num_attention_heads=size.heads, num_key_value_heads=size.kv_heads, head_dim=size.head_dim,
        hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6, max_position_embeddings=8192,
        pad_token_id=pad_token_id, attention_bias=False,
    )


def paligemma_config(size: Pi0Size, vocab_size: int, pad_token_id: int = 0) -> PaliGemmaConfig:
    """PaliGemma = SigLIP + a linear projector to the LM width + the Gemma LM (tied input/output embeddings)."""
    text = gemma_config(size, vocab_size, expert=False, pad_token_id=pad_token_id)
    return PaliGemmaConfig(vision_config=siglip_config(size).to_dict(), text_config=text.to_dict(),
                           projection_dim=size.width, image_token_index=vocab_size)


__all__ = ["SIZES", "Pi0Size", "gemma_config", "paligemma_config", "siglip_config"]
