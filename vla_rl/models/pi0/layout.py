"""The published pi0 checkpoint layouts (parameter names, config.json keys) and our mapping to them.

Weights: openpi's PyTorch `PI0Pytorch` state dict (`model.safetensors`), which LeRobot's port
stores with a leading `model.`. Both load. They were written with transformers 4.5x, whose
`SiglipVisionModel` kept the tower under `vision_model.`; transformers 5 dropped that level, so
`...vision_tower.vision_model.X` is read as `...vision_tower.X` and written back with it. The LM
head is tied to the token embeddings and saved once (as openpi deduplicates it); tensors we never
read (the expert's LM head) are kept aside and written back on save.

config.json: LeRobot's pi0 keys (`type`, `paligemma_variant`, `action_expert_variant`, `chunk_size`,
`n_action_steps`, `max_state_dim`, `max_action_dim`, `num_inference_steps`, `tokenizer_max_length`,
`image_resolution`), `model_type` for our family look-up, `norm_stats`, and our `vla_rl` section.
Variants `gemma_2b` + `gemma_300m` are the published sizes; ours are named `vla-rl-<size>`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from vla_rl.models.pi0.spec import SIZES, Pi0Size

VISION = "paligemma_with_expert.paligemma.model.vision_tower."
TIED_HEAD = "paligemma_with_expert.paligemma.lm_head.weight"
LEROBOT_PREFIX = "model."
PUBLISHED_VARIANTS = {("gemma_2b", "gemma_300m", False): "pi0", ("gemma_2b", "gemma_300m", True): "pi05"}


def variant_names(size_name: str, size: Pi0Size) -> tuple[str, str]:
    """(paligemma_variant, action_expert_variant) for config.json."""
    published = SIZES.get(size_name) == size and size_name in ("pi0", "pi05")
    return ("gemma_2b", "gemma_300m") if published else (f"vla-rl-{size_name}", f"vla-rl-{size_name}-expert")


def published_config(size_name: str, size: Pi0Size, meta: dict[str, Any], norm_stats: dict[str, Any],
                     section: dict[str, Any], dtype: str) -> dict[str, Any]:
    """config.json in LeRobot's pi0 layout, with our `vla_rl` section."""
    vlm, expert = variant_names(size_name, size)
    family_type = "pi05" if size.pi05 else "pi0"
    return {
        "model_type": "pi0", "type": family_type, "paligemma_variant": vlm, "action_expert_variant": expert,
        "chunk_size": int(meta["action_chunk"]), "n_action_steps": int(meta["action_chunk"]),
        "max_state_dim": int(meta["state_dim"]), "max_action_dim": int(meta["model_action_dim"]),
        "num_inference_steps": int(meta["denoise_steps"]), "tokenizer_max_length": int(meta["max_prompt_tokens"]),
        "image_resolution": [size.image_size, size.image_size], "dtype": dtype, "norm_stats": norm_stats,
        "vla_rl": section,
    }


def section_or_default(config: dict[str, Any]) -> dict[str, Any]:
    """Our section of a saved config, or the one a published (openpi / LeRobot) config implies."""
    if "vla_rl" in config:
        return config["vla_rl"]
    key = (config.get("paligemma_variant"), config.get("action_expert_variant"), config.get("type") == "pi05")
    if key not in PUBLISHED_VARIANTS:
        raise ValueError(f"config.json names paligemma_variant={key[0]!r}, action_expert_variant={key[1]!r}; the pi0 "
                         "family rebuilds gemma_2b + gemma_300m (pi0 / pi05) or a checkpoint it saved itself")
    name = PUBLISHED_VARIANTS[key]
    size = SIZES[name]
    stats = config.get("norm_stats") or {}
    first = next(iter(stats.values()), None)
    action_dim = len(first["action"]["q01"]) if first else int(config.get("max_action_dim", 32))
    return {
        "family": "pi0", "size": name, "size_dims": dataclasses.asdict(size), "action_dim": action_dim,
        "model_action_dim": int(config.get("max_action_dim", 32)), "state_dim": int(config.get("max_state_dim", 32)),
        "proprio_dim": int(config.get("max_state_dim", 32)), "action_chunk": int(config.get("n_action_steps", 50)),
        "cameras": ["main"], "max_prompt_tokens": int(config.get("tokenizer_max_length", 200 if size.pi05 else 48)),
        "denoise_steps": int(config.get("num_inference_steps", 10)), "noise_method": "flow_sde", "noise_level": 0.5,
        "noise_std": None, "value_hidden": None, "codec": None,
    }


def to_published_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our parameter names -> openpi's (the SigLIP `vision_model.` level back; the tied LM head once)."""
    out = {}
    for key, value in state.items():
        if key == TIED_HEAD:
            continue
        if key.startswith(VISION):
            key = VISION + "vision_model." + key[len(VISION):]
        out[key] = value
    return out


def from_published_state(state: dict[str, torch.Tensor], ours: set[str]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """openpi / LeRobot names -> ours: (tensors our network reads, tensors it never reads, kept to write back)."""
    if state and all(k.startswith(LEROBOT_PREFIX) for k in state):
        state = {k[len(LEROBOT_PREFIX):]: v for k, v in state.items()}
    mapped, unused = {}, {}
    for key, value in state.items():
        name = key.replace(VISION + "vision_model.", VISION) if key.startswith(VISION + "vision_model.") else key
        if name == TIED_HEAD:
            continue  # tied to the token embeddings
        (mapped if name in ours else unused)[name if name in ours else key] = value
    return mapped, unused


__all__ = ["LEROBOT_PREFIX", "PUBLISHED_VARIANTS", "from_published_state", "published_config", "section_or_default",
           "to_published_state", "variant_names"]
