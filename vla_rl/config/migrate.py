"""Plain-dict migrations that keep older recipes and saved run configs loading under today's schema.

Layout 1 (before the per-family and per-backend sections, up to commit 0128b85) had one flat
`model` section and one flat `env` section for every family and backend. A run saved then wrote
every key of both (`config.yaml` is a full dump), including the keys that could not act:
`max_prompt_tokens` with the cnn family, `action_chunk`/`use_proprio`/`use_wrist` with openvla,
`oft_bidirectional_prompt` outside OFT, `settle_steps` with ManiSkill, and `demos`/`demo_*` beside
`warmstart.demos_dir`. `migrate_layout_1` recognises such a dump (a section holding every key of
its layout-1 form) and drops the keys that could not act, so the run loads as it ran. A recipe
written by hand is never complete, so it is not migrated: a key of another family stays an error.

Renamed keys (`RENAMED`) are accepted under their old name everywhere (files and overrides):
    model.oft_bidirectional_prompt -> model.bidirectional_prompt (the OFT family's own section)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from vla_rl.config.schema import CHOICE_SECTIONS
from vla_rl.config.warmstart import DEMO_GENERATION_KEYS, WarmstartConfig

RENAMED: dict[tuple[str, str], str] = {("model", "oft_bidirectional_prompt"): "bidirectional_prompt"}
"""(section, old key) -> new key in the same section."""

LAYOUT_1_KEYS: dict[str, frozenset[str]] = {
    "model": frozenset({
        "family", "pretrained", "size", "image_size", "action_chunk", "value_head", "dtype", "max_prompt_tokens",
        "use_proprio", "use_wrist", "oft_bidirectional_prompt", "lora", "unnorm_key", "policy_gripper_range",
        "policy_gripper_convention", "binarize_gripper"}),
    "env": frozenset({
        "backend", "task", "reward_mode", "max_episode_steps", "spawn_scale", "image_size", "cameras", "mesh_detail",
        "num_envs", "num_workers", "terminate_on_success", "auto_reset", "seed", "step_timeout_s", "start_timeout_s",
        "settle_steps"}),
}
"""Every key of the flat layout-1 sections, as a saved config.yaml holds them."""

def rename_keys(data: dict[str, Any]) -> dict[str, Any]:
    """Move keys saved under an old name to their new one (in place; returns `data`)."""
    for (section, old), new in RENAMED.items():
        body = data.get(section)
        if isinstance(body, dict) and old in body and new not in body:
            body[new] = body.pop(old)
    return data


def _field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def migrate_layout_1(data: dict[str, Any]) -> dict[str, Any]:
    """A full layout-1 dump (see the module docstring) in today's layout (in place; returns `data`)."""
    for section, base in CHOICE_SECTIONS.items():
        body = data.get(section)
        if not (isinstance(body, dict) and LAYOUT_1_KEYS[section] <= body.keys()):
            continue
        rename_keys({section: body})
        cls = base.choose(body)  # an unregistered family or backend stays a ConfigError
        for key in sorted(body.keys() - _field_names(cls)):
            del body[key]  # a key the chosen family or backend never read
    warm = data.get("warmstart")
    if isinstance(warm, dict) and _field_names(WarmstartConfig) <= warm.keys() and warm.get("demos_dir") is not None:
        for key in DEMO_GENERATION_KEYS:  # read demos generate nothing
            warm.pop(key, None)
    return data


__all__ = ["LAYOUT_1_KEYS", "RENAMED", "migrate_layout_1", "rename_keys"]
