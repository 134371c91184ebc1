"""The files a published OpenVLA / OpenVLA-OFT folder holds beside config.json and the weights, and
which published layout a folder is.

- `dataset_statistics.json`: action (and proprio) statistics by dataset key. OpenVLA's and OFT's
  evaluation scripts replace the config's `norm_stats` with this file when it is present, and OFT's
  `finetune.py` writes a fine-tune's statistics only there, so it wins over config.json here too.
- `action_head--<suffix>checkpoint.pt`, `proprio_projector--<suffix>checkpoint.pt`: OFT's continuous
  L1-regression head and proprio projector, plain torch state dicts (saved from DDP, so keys may start
  with "module."); the reference finds each as the one file whose name holds the component and
  "checkpoint". `noisy_action_projector--*` (diffusion head) and `vision_backbone--*` (FiLM) are
  components this project does not implement: a folder holding one is refused by name.
- `preprocessor_config.json`: the Prismatic image processor's settings (written on save, see
  `preprocessor_config`; never needed to load here).

`detect_layout(path)` names the layout (the table in docs/models.md) from what the folder holds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vla_rl.checkpoints import write_text_atomic
from vla_rl.config.core import ConfigError
from vla_rl.models.checkpoint_io import read_config

DATASET_STATISTICS = "dataset_statistics.json"
PREPROCESSOR_CONFIG = "preprocessor_config.json"
ACTION_HEAD, PROPRIO_PROJECTOR = "action_head", "proprio_projector"
UNSUPPORTED_COMPONENTS = {"noisy_action_projector": "OFT's diffusion action head", "vision_backbone": "OFT's FiLM vision backbone"}
SAVED_SUFFIX = "latest_checkpoint.pt"
"""What our save appends to a component's name (OFT's finetune.py with save_latest_checkpoint_only)."""


# ----------------------------------------------------------------------------------------------
# dataset_statistics.json
# ----------------------------------------------------------------------------------------------


def read_dataset_statistics(path: str) -> dict[str, Any] | None:
    """The folder's dataset_statistics.json ({dataset key: {"action": {...}, "proprio": {...}, ...}}), or None."""
    file = os.path.join(path, DATASET_STATISTICS)
    if not os.path.isfile(file):
        return None
    with open(file) as f:
        stats = json.load(f)
    bad = [k for k, v in stats.items() if not isinstance(v, dict) or "action" not in v]
    if not isinstance(stats, dict) or not stats or bad:
        raise ConfigError(f"{file} is not in OpenVLA's layout ({{dataset key: {{'action': {{q01, q99, ...}}}}}}): "
                          f"entries without 'action': {bad[:5]}; fix or remove the file")
    return stats


def norm_stats_of(path: str, config: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(statistics, where they came from): dataset_statistics.json when present, else config.json's norm_stats."""
    stats = read_dataset_statistics(path)
    if stats is not None:
        return stats, os.path.join(path, DATASET_STATISTICS)
    return dict(config.get("norm_stats") or {}), os.path.join(path, "config.json") + " (norm_stats)"


def write_dataset_statistics(path: str, norm_stats: dict[str, Any]) -> None:
    write_text_atomic(Path(path) / DATASET_STATISTICS, json.dumps(norm_stats, indent=2) + "\n")


# ----------------------------------------------------------------------------------------------
# OFT component files (action head, proprio projector)
# ----------------------------------------------------------------------------------------------


def component_files(path: str, component: str) -> list[str]:
    """Names of the files the reference would take as `component` (name holds it and "checkpoint", ends .pt)."""
    return sorted(n for n in os.listdir(path) if n.startswith(component + "--") and "checkpoint" in n and n.endswith(".pt"))


def find_component(path: str, component: str) -> str | None:
    """The one `component` file of the folder (None when there is none); several are a ConfigError."""
    files = component_files(path, component)
    if len(files) > 1:
        raise ConfigError(f"{path} holds {len(files)} {component} files {files}; keep exactly one (OFT's loader "
                          "takes the one whose name holds the component and 'checkpoint')")
    return os.path.join(path, files[0]) if files else None


def load_component(file: str) -> dict[str, torch.Tensor]:
    """A component's state dict with DDP's "module." prefix removed (as OFT's load_component_state_dict does)."""
    state = torch.load(file, map_location="cpu", weights_only=True)
    return {k.removeprefix("module."): v for k, v in state.items()}


def save_component(path: str, component: str, state: dict[str, torch.Tensor]) -> None:
    """Write `<component>--latest_checkpoint.pt` atomically, replacing any other file of that component."""
    for old in component_files(path, component):
        os.remove(os.path.join(path, old))
    final = os.path.join(path, f"{component}--{SAVED_SUFFIX}")
    tmp = os.path.join(path, f".{component}.tmp-{os.getpid()}")
    torch.save({k: v.detach().contiguous().clone() for k, v in state.items()}, tmp)
    os.replace(tmp, final)


# ----------------------------------------------------------------------------------------------
# Which layout a folder is
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedLayout:
    """What a checkpoint folder holds, and so which family and action head load it."""

    name: str
    """"vla-rl" (our section), "openvla", "oft-tokens" or "oft-l1" (docs/models.md, published layouts)."""
    family: str
    """The policy family that loads it by default."""
    action_head: str | None
    """"tokens" or "l1_regression" for the OFT layouts (None: OpenVLA's autoregressive tokens)."""
    action_head_file: str | None = None
    proprio_file: str | None = None


def detect_layout(path: str, config: dict[str, Any] | None = None) -> PublishedLayout:
    """The layout of the folder at `path` (config.json's `vla_rl` section, else the files beside it)."""
    config = read_config(path) if config is None else config
    head, proprio = find_component(path, ACTION_HEAD), find_component(path, PROPRIO_PROJECTOR)
    if "vla_rl" in config:
        section = config["vla_rl"]
        return PublishedLayout("vla-rl", section["family"], section.get("action_head"), head, proprio)
    if config.get("model_type") != "openvla":
        raise ConfigError(f"{path}/config.json has model_type={config.get('model_type')!r} and no vla_rl section; "
                          "the loaders here read OpenVLA-layout folders (model_type 'openvla') and their own saves")
    for component, what in UNSUPPORTED_COMPONENTS.items():
        found = component_files(path, component)
        if found:
            raise ConfigError(f"{path} holds {found[0]} ({what}), which this project does not implement; "
                              "only OFT's L1-regression head and discrete action tokens are supported")
    if head is not None:
        return PublishedLayout("oft-l1", "openvla_oft", "l1_regression", head, proprio)
    if proprio is not None:
        return PublishedLayout("oft-tokens", "openvla_oft", "tokens", None, proprio)
    return PublishedLayout("openvla", "openvla", None)


# ----------------------------------------------------------------------------------------------
# preprocessor_config.json
# ----------------------------------------------------------------------------------------------


def preprocessor_config(image_size: int, dino_mean: tuple[float, ...], dino_std: tuple[float, ...],
                        siglip_mean: tuple[float, ...], siglip_std: tuple[float, ...]) -> dict[str, Any]:
    """The JSON OpenVLA's `PrismaticImageProcessor` saves for a fused DINOv2 + SigLIP backbone with the
    "resize-naive" strategy: bicubic resize to `image_size` (torchvision interpolation 3), no crop,
    normalisation per tower. `means`/`stds` are timm's data-config values; `tvf_normalize_params` are
    what the processor applies (for DINOv2 these are the ImageNet statistics rounded to bfloat16)."""
    imagenet_mean, imagenet_std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    size = [image_size, image_size]
    tower = {"size": size, "interpolation": 3, "max_size": None, "antialias": True}
    return {
        "auto_map": {"AutoImageProcessor": "processing_prismatic.PrismaticImageProcessor",
                     "AutoProcessor": "processing_prismatic.PrismaticProcessor"},
        "image_processor_type": "PrismaticImageProcessor",
        "processor_class": "PrismaticProcessor",
        "use_fused_vision_backbone": True,
        "image_resize_strategy": "resize-naive",
        "input_sizes": [[3, image_size, image_size]] * 2,
        "interpolations": ["bicubic", "bicubic"],
        "means": [imagenet_mean, list(siglip_mean)],
        "stds": [imagenet_std, list(siglip_std)],
        "tvf_resize_params": [dict(tower), dict(tower)],
        "tvf_crop_params": [{"output_size": size}, {"output_size": size}],
        "tvf_normalize_params": [{"mean": list(dino_mean), "std": list(dino_std), "inplace": False},
                                 {"mean": list(siglip_mean), "std": list(siglip_std), "inplace": False}],
        "tvf_do_letterbox": False,
        "tvf_letterbox_fill": None,
    }


def write_preprocessor_config(path: str, config: dict[str, Any]) -> None:
    write_text_atomic(Path(path) / PREPROCESSOR_CONFIG, json.dumps(config, indent=2) + "\n")


__all__ = ["ACTION_HEAD", "DATASET_STATISTICS", "PREPROCESSOR_CONFIG", "PROPRIO_PROJECTOR", "PublishedLayout",
           "component_files", "detect_layout", "find_component", "load_component", "norm_stats_of",
           "preprocessor_config", "read_dataset_statistics", "save_component", "write_dataset_statistics",
           "write_preprocessor_config"]
