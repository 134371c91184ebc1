"""Tiny random-weight folders in the published layouts, built in the tests (no downloads).

Each mirrors the file names, keys and JSON layout of a released folder:

- "openvla" (openvla/openvla-7b-finetuned-libero-*): config.json with model_type "openvla", the base
  mixture's `norm_stats` and `auto_map`, no `vla_rl` section; sharded safetensors with an index; tokenizer
  files; preprocessor_config.json; dataset_statistics.json with the fine-tune's key.
- "oft-l1" (moojink/openvla-7b-oft-finetuned-libero-*): the same plus `action_head--150000_checkpoint.pt`
  and `proprio_projector--150000_checkpoint.pt`, state dicts saved from DDP ("module." prefixes).
- "oft-tokens": an OFT fine-tune with discrete tokens and proprio: only the proprio projector file.
- "rlinf-sft" (RLinf's / SimpleVLA-RL's Openvla-oft-SFT-libero-*-traj1): OpenVLA's files only; the chunk, the
  single camera and the missing proprio live in RLinf's run config, not in the folder.

The weights come from a tiny policy of ours (so the tests can compare against it); the JSON and file
names are the published ones.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vla_rl.config.model import ModelConfig
from vla_rl.models.registry import build_policy

FINETUNE_KEY = "libero_spatial_no_noops"
AUTO_MAP = {"AutoConfig": "configuration_prismatic.OpenVLAConfig",
            "AutoModelForVision2Seq": "modeling_prismatic.OpenVLAForActionPrediction"}


def _stats(n: int, low: float, high: float, mask: list[bool] | None = None) -> dict:
    out = {"mean": [0.5 * (low + high)] * n, "std": [0.3] * n, "max": [high + 0.1] * n, "min": [low - 0.1] * n,
           "q01": [low + 0.01 * i for i in range(n)], "q99": [high - 0.02 * i for i in range(n)]}
    if mask is not None:
        out["mask"] = mask
    return out


def dataset_statistics() -> dict:
    """dataset_statistics.json of a LIBERO fine-tune: action (gripper unmasked) and 8-D proprio statistics."""
    return {FINETUNE_KEY: {"action": _stats(7, -0.9, 0.9, [True] * 6 + [False]), "proprio": _stats(8, -0.5, 1.5),
                           "num_transitions": 52970, "num_trajectories": 432}}


def base_norm_stats() -> dict:
    """config.json's norm_stats of the base model: the pretraining mixture, not the fine-tune."""
    return {name: {"action": _stats(7, -0.5, 0.5, [True] * 6 + [False]), "proprio": _stats(7, 0.0, 0.0)}
            for name in ("bridge_orig", "fractal20220817_data", "kuka")}


SOURCES = {
    "openvla": dict(family="openvla"),
    "oft-l1": dict(family="openvla_oft", action_chunk=8, use_proprio=True, use_wrist=True, bidirectional_prompt=True,
                   action_head="l1_regression"),
    "oft-tokens": dict(family="openvla_oft", action_chunk=8, use_proprio=True, bidirectional_prompt=True),
    "rlinf-sft": dict(family="openvla_oft", action_chunk=8, bidirectional_prompt=True),
}
COMPONENTS = {"openvla": (), "oft-l1": ("action_head", "proprio_projector"), "oft-tokens": ("proprio_projector",),
              "rlinf-sft": ()}


def source_policy(layout: str, seed: int = 3):
    """The tiny policy whose weights a `layout` folder holds (7 action dims, 8-D proprio, main + wrist cameras)."""
    return build_policy(ModelConfig(value_head=False, **SOURCES[layout]), 7, ("main", "wrist"), 8, seed=seed)


def publish(policy, dst: Path, layout: str, statistics: dict | None = None) -> Path:
    """Write `policy` into `dst` in the published `layout` (module docstring)."""
    src = dst.parent / f".{dst.name}-ours"
    policy.save_pretrained(str(src))
    dst.mkdir(parents=True, exist_ok=True)
    config = json.loads((src / "config.json").read_text())
    del config["vla_rl"]
    config.update(norm_stats=base_norm_stats(), auto_map=AUTO_MAP)
    (dst / "config.json").write_text(json.dumps(config, indent=2))
    for name in ("tokenizer.json", "tokenizer_config.json", "preprocessor_config.json"):
        shutil.copy(src / name, dst / name)
    state = {k: v for k, v in load_file(str(src / "model.safetensors")).items()
             if not k.startswith(("value_head.", "action_scale."))}
    keys = sorted(state)
    shards = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2],
              "model-00002-of-00002.safetensors": keys[len(keys) // 2:]}
    for shard, names in shards.items():
        save_file({k: state[k].contiguous() for k in names}, str(dst / shard), metadata={"format": "pt"})
    index = {"metadata": {"total_size": sum(v.numel() * v.element_size() for v in state.values())},
             "weight_map": {k: shard for shard, names in shards.items() for k in names}}
    (dst / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    for component in COMPONENTS[layout]:
        ours = torch.load(src / f"{component}--latest_checkpoint.pt", weights_only=True)
        torch.save({f"module.{k}": v for k, v in ours.items()}, dst / f"{component}--150000_checkpoint.pt")
    if statistics is not None:
        (dst / "dataset_statistics.json").write_text(json.dumps(statistics, indent=2))
    shutil.rmtree(src)
    return dst


def published_folder(tmp: Path, layout: str, seed: int = 3) -> tuple[object, Path]:
    """(source policy, folder) of `layout` with a fine-tune's dataset_statistics.json."""
    policy = source_policy(layout, seed)
    return policy, publish(policy, tmp / layout, layout, dataset_statistics())


__all__ = ["FINETUNE_KEY", "base_norm_stats", "dataset_statistics", "publish", "published_folder", "source_policy"]
