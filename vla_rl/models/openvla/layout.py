"""The published OpenVLA checkpoint layout (config.json keys and parameter names) and our mapping to it.

Our save writes the same top-level config keys as `openvla/openvla-7b` (model_type "openvla",
vision_backbone_id, llm_backbone_id, text_config, norm_stats, n_action_bins, ...) plus a `vla_rl`
section with what a tiny model needs to be rebuilt (tower configs, value head, codec settings).
A published checkpoint has no `vla_rl` section: its towers are derived from `vision_backbone_id`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from transformers import Dinov2WithRegistersConfig, SiglipVisionConfig

from vla_rl.models.openvla.spec import SIZES, config_to_dict, dino_config, siglip_config

# Published vision backbones we can rebuild (preset dims; the towers drop the unused last block). Our
# own presets are written as "vla-rl-{size}-dinosiglip-{image}px" and parsed back by `_preset_of`.
KNOWN_VISION_BACKBONES = {"dinosiglip-vit-so-224px": "7b"}
# Keys openvla-7b's config.json also holds, which OpenVLA's own configuration class reads to build its timm towers.
PUBLISHED_7B_KEYS = {"hf_llm_id": "meta-llama/Llama-2-7b-hf",
                     "timm_model_ids": ["vit_large_patch14_reg4_dinov2.lvd142m", "vit_so400m_patch14_siglip_224"],
                     "timm_override_act_layers": [None, None]}
LLAMA2_SPACE_ID = 29871  # "▁": OpenVLA appends it to the prompt when the prompt does not end with it


def published_config(text: dict[str, Any], norm_stats: dict[str, Any], section: dict[str, Any], pad_token_id: int,
                     dtype: str) -> dict[str, Any]:
    """config.json in the published layout, with our `vla_rl` section."""
    size, image_size = section.get("size"), int(section["image_size"])
    is_7b = size == "7b" and image_size == 224 and text.get("vocab_size") == 32064
    published_backbones = PUBLISHED_7B_KEYS if is_7b else {}
    return {
        "architectures": ["OpenVLAForActionPrediction"],
        "model_type": "openvla",
        "vision_backbone_id": "dinosiglip-vit-so-224px" if is_7b else f"vla-rl-{size}-dinosiglip-{image_size}px",
        "llm_backbone_id": "llama2-7b-pure" if is_7b else f"vla-rl-{size}-llama",
        "arch_specifier": "no-align+fused-gelu-mlp",
        "use_fused_vision_backbone": True,
        "image_resize_strategy": "resize-naive",
        "image_sizes": [image_size, image_size],
        "llm_max_length": int(text.get("max_position_embeddings", 2048)),
        "pad_token_id": pad_token_id,
        "pad_to_multiple_of": 64,
        "n_action_bins": 256,
        "norm_stats": norm_stats,
        "output_projector_states": False,
        "text_config": text,
        "torch_dtype": dtype,
        **published_backbones,
        "vla_rl": section,
    }


def vla_rl_section_or_default(config: dict[str, Any]) -> dict[str, Any]:
    """Our section of a saved config, or the one a published checkpoint implies."""
    if "vla_rl" in config:
        return config["vla_rl"]
    if config.get("model_type") != "openvla":
        raise ValueError(f"config.json has model_type={config.get('model_type')!r}; the openvla family reads 'openvla'")
    backbone = config.get("vision_backbone_id")
    preset, image_size = _preset_of(backbone)
    if config.get("n_action_bins", 256) != 256:
        raise ValueError(f"n_action_bins={config['n_action_bins']}; only 256 bins are supported")
    size = dataclasses.replace(SIZES[preset], image_size=int(config.get("image_sizes", [image_size])[0]))
    is_llama2 = str(config.get("llm_backbone_id", "")).startswith("llama2")
    norm_stats = config.get("norm_stats") or {}
    first = next(iter(norm_stats.values()), {"action": {"q01": [0.0] * 7}})
    return {
        "family": "openvla", "size": preset, "image_size": size.image_size,
        "max_prompt_tokens": 128, "prompt_suffix_id": LLAMA2_SPACE_ID if is_llama2 else None, "value_hidden": None,
        "resize": "bicubic_pil",  # OpenVLA's image processor: bicubic resize of a PIL image
        "action_dim": len(first["action"]["q01"]),
        # OpenVLA's datasets keep the gripper in [0, 1] with 1 = open; its LIBERO evaluation binarises.
        "codec": {"unnorm_key": None, "policy_gripper_range": "unit", "policy_gripper_convention": "open_positive",
                  "env_gripper_convention": "close_positive", "binarize_gripper": True},
        "dino_config": config_to_dict(dino_config(size)), "siglip_config": config_to_dict(siglip_config(size)),
    }


DINO, SIGLIP = "vision_backbone.featurizer.", "vision_backbone.fused_featurizer."
# Per-block renames, ours (HF transformers) -> published (timm, with OpenVLA's ls*.gamma -> ls*.scale_factor).
_DINO_BLOCK = {"norm1": "norm1", "attention.o_proj": "attn.proj", "layer_scale1.lambda1": "ls1.scale_factor",
               "norm2": "norm2", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2", "layer_scale2.lambda1": "ls2.scale_factor"}
_SIGLIP_BLOCK = {"layer_norm1": "norm1", "self_attn.out_proj": "attn.proj", "layer_norm2": "norm2",
                 "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
_QKV = {DINO: ("attention", "encoder.layer"), SIGLIP: ("self_attn", "encoder.layers")}


def _preset_of(backbone: str | None) -> tuple[str, int]:
    """(size preset, image size) of a vision_backbone_id."""
    if backbone in KNOWN_VISION_BACKBONES:
        preset = KNOWN_VISION_BACKBONES[backbone]
        return preset, SIZES[preset].image_size
    parts = str(backbone).split("-")
    if len(parts) == 5 and parts[:2] == ["vla", "rl"] and parts[3] == "dinosiglip" and parts[2] in SIZES:
        return parts[2], int(parts[4].removesuffix("px"))
    raise ValueError(f"vision_backbone_id={backbone!r} is not supported; known: {sorted(KNOWN_VISION_BACKBONES)} "
                     f"and vla-rl-<size>-dinosiglip-<N>px for sizes {sorted(SIZES)}")


def to_published_state(state: dict[str, torch.Tensor], dino: Dinov2WithRegistersConfig,
                       siglip: SiglipVisionConfig) -> dict[str, torch.Tensor]:
    """Our parameter names -> the published (timm-style) names; q/k/v fused into qkv.

    DINOv2's class-token position embedding is folded into `cls_token` (timm's reg4 DINOv2 has no
    position for prefix tokens), which leaves every output unchanged.
    """
    out = {k: v for k, v in state.items() if not k.startswith("vision_backbone.")}
    d, sg = DINO + "embeddings.", SIGLIP + "embeddings."
    pos = state[d + "position_embeddings"]
    out[DINO + "cls_token"] = state[d + "cls_token"] + pos[:, :1]
    out[DINO + "pos_embed"] = pos[:, 1:]
    out[DINO + "reg_token"] = state[d + "register_tokens"]
    out[DINO + "patch_embed.proj.weight"] = state[d + "patch_embeddings.projection.weight"]
    out[DINO + "patch_embed.proj.bias"] = state[d + "patch_embeddings.projection.bias"]
    out[SIGLIP + "pos_embed"] = state[sg + "position_embedding.weight"].unsqueeze(0)
    out[SIGLIP + "patch_embed.proj.weight"] = state[sg + "patch_embedding.weight"]
    out[SIGLIP + "patch_embed.proj.bias"] = state[sg + "patch_embedding.bias"]
    for prefix, cfg, renames in ((DINO, dino, _DINO_BLOCK), (SIGLIP, siglip, _SIGLIP_BLOCK)):
        attn, layers = _QKV[prefix]
        for i in range(cfg.num_hidden_layers):
            ours, theirs = f"{prefix}{layers}.{i}.", f"{prefix}blocks.{i}."
            for part in ("weight", "bias"):
                out[theirs + "attn.qkv." + part] = torch.cat(
                    [state[f"{ours}{attn}.{p}_proj.{part}"] for p in ("q", "k", "v")], dim=0)
            for src, dst in renames.items():
                for key in [k for k in state if k.startswith(ours + src + ".") or k == ours + src]:
                    out[theirs + dst + key[len(ours + src):]] = state[key]
    return out


def from_published_state(state: dict[str, torch.Tensor], dino: Dinov2WithRegistersConfig,
                         siglip: SiglipVisionConfig) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Published (timm-style) names -> ours. Returns (our state, unused published tensors).

    Unused tensors are the ones OpenVLA never reads (each tower's last block, final norms, SigLIP's
    attention-pool head); the policy keeps them to write them back on save.
    """
    out = {k: v for k, v in state.items() if not k.startswith("vision_backbone.")}
    d, sg = DINO + "embeddings.", SIGLIP + "embeddings."
    used: set[str] = set()

    def take(key: str) -> torch.Tensor:
        if key not in state:
            raise KeyError(f"published checkpoint lacks {key!r}")
        used.add(key)
        return state[key]

    pos = take(DINO + "pos_embed")
    out[d + "position_embeddings"] = torch.cat([torch.zeros_like(pos[:, :1]), pos], dim=1)
    out[d + "cls_token"] = take(DINO + "cls_token")
    out[d + "register_tokens"] = take(DINO + "reg_token")
    out[d + "patch_embeddings.projection.weight"] = take(DINO + "patch_embed.proj.weight")
    out[d + "patch_embeddings.projection.bias"] = take(DINO + "patch_embed.proj.bias")
    out[sg + "position_embedding.weight"] = take(SIGLIP + "pos_embed")[0]
    out[sg + "patch_embedding.weight"] = take(SIGLIP + "patch_embed.proj.weight")
    out[sg + "patch_embedding.bias"] = take(SIGLIP + "patch_embed.proj.bias")
    for prefix, cfg, renames in ((DINO, dino, _DINO_BLOCK), (SIGLIP, siglip, _SIGLIP_BLOCK)):
        attn, layers = _QKV[prefix]
        for i in range(cfg.num_hidden_layers):
            ours, theirs = f"{prefix}{layers}.{i}.", f"{prefix}blocks.{i}."
            for part in ("weight", "bias"):
                for p, chunk in zip(("q", "k", "v"), take(theirs + "attn.qkv." + part).chunk(3, dim=0)):
                    out[f"{ours}{attn}.{p}_proj.{part}"] = chunk.clone()
            for src, dst in renames.items():
                for key in [k for k in state if k.startswith(theirs + dst + ".") or k == theirs + dst]:
                    out[ours + src + key[len(theirs + dst):]] = take(key)
    unused = {k: v for k, v in state.items() if k.startswith("vision_backbone.") and k not in used}
    strays = [k for k in unused if not _never_read(k, dino, siglip)]
    if strays:
        raise ValueError(f"published checkpoint has vision weights this layout does not know: {strays[:8]}")
    return out, unused


def _never_read(key: str, dino: Dinov2WithRegistersConfig, siglip: SiglipVisionConfig) -> bool:
    """Published vision tensors OpenVLA never reads: blocks past the feature layer, norms, pooling heads."""
    for prefix, cfg in ((DINO, dino), (SIGLIP, siglip)):
        if key.startswith(prefix):
            rest = key[len(prefix):]
            if rest.startswith("blocks."):
                return int(rest.split(".")[1]) >= cfg.num_hidden_layers
            return rest.split(".")[0] in ("norm", "fc_norm", "attn_pool", "head")
    return False


__all__ = ["from_published_state", "published_config", "to_published_state", "vla_rl_section_or_default"]
