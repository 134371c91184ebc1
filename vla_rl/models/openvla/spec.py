"""Architecture of the OpenVLA-style family: size presets and the HF configs built from them.

A preset names the dims of the three parts (DINOv2 + SigLIP vision towers, fused projector, Llama
LM). The towers are built with exactly the blocks whose output is used: Prismatic/OpenVLA reads the
features of the second-to-last ViT block, so a published 24-block DINOv2 is built here with 23
blocks and its last block (never used) is not loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transformers import Dinov2WithRegistersConfig, LlamaConfig, SiglipVisionConfig


@dataclass(frozen=True)
class OpenVLASize:
    """Dims of one size preset."""

    image_size: int
    """Square input side."""
    patch_size: int
    """ViT patch side (both towers)."""
    dino_hidden: int
    """DINOv2 width."""
    dino_layers: int
    """DINOv2 blocks whose output is used."""
    dino_heads: int
    """DINOv2 attention heads."""
    dino_registers: int
    """DINOv2 register tokens (4 in OpenVLA's reg4 backbone)."""
    siglip_hidden: int
    """SigLIP width."""
    siglip_layers: int
    """SigLIP blocks whose output is used."""
    siglip_heads: int
    """SigLIP attention heads."""
    siglip_mlp: int
    """SigLIP MLP width."""
    llm_hidden: int
    """Llama width."""
    llm_layers: int
    """Llama blocks."""
    llm_heads: int
    """Llama attention heads."""
    llm_kv_heads: int
    """Llama key/value heads."""
    llm_mlp: int
    """Llama MLP width."""
    value_hidden: int
    """Width of the value head's hidden layer."""
    base_vocab: int = 515
    """Tokenizer base vocabulary of a model built from the preset (the offline byte-level tokenizer padded
    to this size): 515 for the small presets, Llama-2's 32000 for 7b (action ids are its last 256)."""


SIZES: dict[str, OpenVLASize] = {
    # Fast enough on a 2-core CPU for PPO smoke runs: 16 patches, 2 blocks per part.
    "tiny": OpenVLASize(64, 16, 64, 2, 2, 4, 64, 2, 2, 128, 128, 2, 4, 4, 256, 128),
    # The CPU learning recipes (configs/quickstart_vla.yaml): 16 patches, one block per tower, two LM blocks.
    # Two, not one: OFT's action slots are zero vectors, so in the first block their queries are zero and every
    # slot attends uniformly to the same keys; only from the second block on do positions tell them apart
    # (with one block, 13 of a 2 x 7 chunk's 14 slot states were one vector; tests/learning/test_quickstart_vla.py).
    "micro": OpenVLASize(64, 16, 32, 1, 2, 4, 32, 1, 2, 64, 64, 2, 4, 4, 128, 64),
    # A step up for CPU experiments that need to learn something: 64 patches, 4 LM blocks.
    "small": OpenVLASize(128, 16, 128, 3, 4, 4, 128, 3, 4, 256, 256, 4, 8, 8, 688, 256),
    # OpenVLA-7B (dinosiglip-vit-so-224px + llama2-7b): for shape reference and GPU use only.
    "7b": OpenVLASize(224, 14, 1024, 23, 16, 4, 1152, 26, 16, 4304, 4096, 32, 32, 32, 11008, 1024, base_vocab=32000),
}


def dino_config(size: OpenVLASize) -> Dinov2WithRegistersConfig:
    """DINOv2-with-registers tower config (timm's vit_*_reg4_dinov2 without its unused last block)."""
    return Dinov2WithRegistersConfig(
        hidden_size=size.dino_hidden, num_hidden_layers=size.dino_layers, num_attention_heads=size.dino_heads,
        mlp_ratio=4, image_size=size.image_size, patch_size=size.patch_size, num_register_tokens=size.dino_registers,
        hidden_act="gelu", layer_norm_eps=1e-6, layerscale_value=1.0,
    )


def siglip_config(size: OpenVLASize) -> SiglipVisionConfig:
    """SigLIP tower config (no pooling head: OpenVLA uses patch features).

    The MLP uses the exact (erf) GELU, as the published tower does: OpenVLA builds it with timm 0.9
    (`vit_so400m_patch14_siglip_224`, no act_layer given, so timm's default nn.GELU), not with the tanh
    approximation of transformers' SigLIP checkpoints. Our own checkpoints record the activation they
    were trained with in their tower config, so older saves keep theirs."""
    return SiglipVisionConfig(
        hidden_size=size.siglip_hidden, num_hidden_layers=size.siglip_layers, num_attention_heads=size.siglip_heads,
        intermediate_size=size.siglip_mlp, image_size=size.image_size, patch_size=size.patch_size,
        hidden_act="gelu", layer_norm_eps=1e-6, vision_use_head=False,
    )


def llama_config(size: OpenVLASize, vocab_size: int, pad_token_id: int, bos_token_id: int, eos_token_id: int,
                 max_positions: int) -> LlamaConfig:
    """Llama config; `vocab_size` is the padded embedding size (OpenVLA pads to a multiple of 64).
    RMSNorm eps 1e-6 is what OpenVLA's checkpoints use (LlamaConfig's default there)."""
    return LlamaConfig(
        vocab_size=vocab_size, hidden_size=size.llm_hidden, intermediate_size=size.llm_mlp,
        num_hidden_layers=size.llm_layers, num_attention_heads=size.llm_heads,
        num_key_value_heads=size.llm_kv_heads, max_position_embeddings=max_positions, rms_norm_eps=1e-6,
        pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
        tie_word_embeddings=False, attention_bias=False, mlp_bias=False,
    )


def round_up(n: int, multiple: int) -> int:
    return (n + multiple - 1) // multiple * multiple


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A transformers config as a full plain dict (robust to changed defaults), minus bookkeeping keys."""
    d = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    for key in ("transformers_version", "_name_or_path", "architectures", "dtype", "torch_dtype"):
        d.pop(key, None)
    return d


__all__ = ["SIZES", "OpenVLASize", "config_to_dict", "dino_config", "llama_config", "round_up", "siglip_config"]
