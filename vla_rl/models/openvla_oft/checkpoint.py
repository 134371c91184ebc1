"""What an OFT checkpoint folder loads to: the policy's `meta` (chunk, cameras, proprio, action head).

A folder we saved records all of it in config.json's `vla_rl` section. A published folder records only
some of it in its files: an `action_head--*checkpoint.pt` means the continuous L1 head (its tensor
shapes give the head's size), a `proprio_projector--*checkpoint.pt` means proprio input (its first
layer gives the proprio size). The rest comes from the run's config where a key is set away from its
default (`model.use_wrist` when set at all), else from OpenVLA-OFT's LIBERO release, which is what such
folders are: a chunk of 8, bidirectional attention over the whole sequence, and with the L1 head two images
(main + wrist). A config that asks for
what the files contradict (proprio without a projector file, an action head the folder lacks) is a
ConfigError naming what the folder holds.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from vla_rl.config.core import ConfigError
from vla_rl.models.openvla.published import PROPRIO_PROJECTOR, PublishedLayout, load_component
from vla_rl.models.openvla_oft.l1_head import head_dims

RELEASE_CHUNK = 8
"""OFT's NUM_ACTIONS_CHUNK for LIBERO (prismatic/vla/constants.py), the chunk of every released LIBERO folder."""
DEFAULT_SCALE = 0.1
"""Initial scale of the sampling distribution of an L1 head that has none saved (normalised action units)."""
CONTINUOUS_KEYS = ("action_distribution", "action_scale", "learn_action_scale")


def _set(cfg: Any, key: str) -> bool:
    """Whether `cfg` sets `key` away from its default (a key left at its default keeps the checkpoint's)."""
    if cfg is None:
        return False
    default = {f.name: f.default for f in dataclasses.fields(cfg)}[key]
    return getattr(cfg, key) != default


def head_meta(head: str, cfg: Any, saved: dict[str, Any] | None = None) -> dict[str, Any]:
    """The action-head keys of `meta`: the config's choices over the saved ones over the defaults."""
    if head == "tokens":
        stray = [k for k in CONTINUOUS_KEYS if cfg is not None and getattr(cfg, k) is not None]
        if stray:
            raise ConfigError(f"model.{stray[0]} acts only with the L1 head, and this policy reads action tokens; "
                              f"remove model.{stray[0]}", key=f"model.{stray[0]}")
        return {"action_head": "tokens"}
    saved = saved or {}
    distribution = (cfg.action_distribution if cfg is not None and cfg.action_distribution is not None
                    else saved.get("action_distribution", "gaussian"))
    learn = (cfg.learn_action_scale if cfg is not None and cfg.learn_action_scale is not None
             else saved.get("learn_action_scale", True))
    return {"action_head": "l1_regression", "action_distribution": distribution, "learn_action_scale": bool(learn)}


def published_meta(meta: dict[str, Any], path: str, layout: PublishedLayout, cfg: Any, llm_dim: int) -> dict[str, Any]:
    """`meta` of a published folder (no `vla_rl` section), from its files and `cfg` (see the module docstring)."""
    head = layout.action_head or "tokens"
    requested = getattr(cfg, "action_head", None)
    if requested is not None and requested != head:
        held = (f"holds {os.path.basename(layout.action_head_file)} (OFT's L1-regression head)" if layout.action_head_file
                else "holds no action_head--*checkpoint.pt, so its actions are the LM head's tokens")
        raise ConfigError(f"model.action_head={requested} but {path} {held}; remove model.action_head (or set "
                          f"it to {head})", key="model.action_head")
    proprio_dim = 0
    if layout.proprio_file is not None:
        try:
            proprio_dim = projector_dim(load_component(layout.proprio_file), llm_dim)
        except ValueError as exc:
            raise ConfigError(f"{layout.proprio_file}: {exc}") from None
    elif cfg is not None and cfg.use_proprio:
        raise ConfigError(f"model.use_proprio=true but {path} holds no {PROPRIO_PROJECTOR}--*checkpoint.pt (OFT keeps "
                          f"the proprio projector there; files: {sorted(os.listdir(path))[:12]}); remove "
                          "model.use_proprio or add the projector file", key="model.use_proprio")
    chunk = cfg.action_chunk if _set(cfg, "action_chunk") else RELEASE_CHUNK
    wrist = cfg.use_wrist if cfg is not None and cfg.use_wrist is not None else head == "l1_regression"
    meta.update(action_chunk=int(chunk), cameras=["main", "wrist"] if wrist else ["main"], proprio_dim=proprio_dim,
                bidirectional_prompt=True, proprio_normalization="bounds_q99" if proprio_dim else "none",
                **head_meta(head, cfg))
    if head == "l1_regression":
        try:
            meta["l1_head"] = head_dims(load_component(layout.action_head_file), llm_dim)
        except ValueError as exc:
            raise ConfigError(f"{layout.action_head_file}: {exc}") from None
    return meta


def projector_dim(state: dict[str, Any], llm_dim: int) -> int:
    """The proprio size of a saved OFT `ProprioProjector` state dict (fc1: P -> H, fc2: H -> H), checked
    against the LLM width `llm_dim`."""
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    if "fc1.weight" not in shapes or "fc2.weight" not in shapes:
        raise ValueError(f"not a proprio projector state dict (fc1, fc2): keys {sorted(shapes)[:6]}")
    (hidden, proprio), fc2 = shapes["fc1.weight"], shapes["fc2.weight"]
    if hidden != llm_dim or fc2 != (llm_dim, llm_dim):
        raise ValueError(f"the projector maps {proprio} -> {hidden} -> {fc2[0]} features, but the LLM width is "
                         f"{llm_dim}; it belongs to another model")
    return int(proprio)


def saved_meta(meta: dict[str, Any], cfg: Any) -> dict[str, Any]:
    """`meta` of a folder we saved; sections written before a key existed get what those saves did."""
    meta.setdefault("action_head", "tokens")
    meta.setdefault("proprio_normalization", "none")  # earlier saves had identity statistics: proprio fed raw
    meta.update(head_meta(meta["action_head"], cfg, saved=meta))
    return meta


def normalise_proprio(proprio: np.ndarray, stats: dict[str, Any]) -> np.ndarray:
    """OFT's `normalize_proprio` for BOUNDS_Q99 (its LIBERO setting): q01/q99 -> [-1, 1] on masked dims, then
    every dim clipped to [-1, 1] (numpy in, numpy out)."""
    low, high = np.asarray(stats["q01"], dtype=np.float64), np.asarray(stats["q99"], dtype=np.float64)
    mask = np.asarray(stats.get("mask", np.ones_like(low, dtype=bool)), dtype=bool)
    p = np.asarray(proprio, dtype=np.float64)
    return np.clip(np.where(mask, 2 * (p - low) / (high - low + 1e-8) - 1, p), -1.0, 1.0)


__all__ = ["CONTINUOUS_KEYS", "DEFAULT_SCALE", "RELEASE_CHUNK", "head_meta", "normalise_proprio", "projector_dim",
           "published_meta", "saved_meta"]
