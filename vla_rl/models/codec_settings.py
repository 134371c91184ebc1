"""Which action-decoding settings a policy uses: the run's config over the checkpoint's over defaults.

The settings are the codec fields that are not statistics (unnorm_key and the gripper conventions).
They are saved in each checkpoint (`codec` in the config's vla_rl section) so that a policy decodes
the same way after reload, and a config field left at None keeps the checkpoint's choice.
"""

from __future__ import annotations

from typing import Any

from vla_rl.config.model import ModelConfig
from vla_rl.models.action_codec import ActionCodec

DEFAULTS: dict[str, Any] = {
    "unnorm_key": None,
    "policy_gripper_range": "symmetric",
    "policy_gripper_convention": None,
    "env_gripper_convention": "close_positive",
    "binarize_gripper": False,
}


def resolve(saved: dict[str, Any] | None, cfg: ModelConfig | None, env_gripper: str | None,
            unnorm_key: str | None = None) -> dict[str, Any]:
    """Defaults, overridden by the saved settings, overridden by the non-None config fields and the env, and
    by `unnorm_key` when given (a loader's argument)."""
    fields = {**DEFAULTS, **(saved or {})}
    if cfg is not None:
        for name in ("unnorm_key", "policy_gripper_range", "binarize_gripper"):
            if getattr(cfg, name) is not None:
                fields[name] = getattr(cfg, name)
        if cfg.policy_gripper_convention is not None:
            same = cfg.policy_gripper_convention == "same_as_env"
            fields["policy_gripper_convention"] = None if same else cfg.policy_gripper_convention
    if env_gripper is not None:
        fields["env_gripper_convention"] = env_gripper
    if unnorm_key is not None:
        fields["unnorm_key"] = unnorm_key
    return fields


def make_codec(vocab_size: int, norm_stats: dict[str, Any], fields: dict[str, Any]) -> ActionCodec:
    settings = {k: v for k, v in fields.items() if k != "unnorm_key"}
    return ActionCodec.from_norm_stats(vocab_size, norm_stats, fields.get("unnorm_key"), **settings)


def saved_fields(codec: ActionCodec) -> dict[str, Any]:
    """The settings of `codec` in the form `resolve` reads back."""
    return {"unnorm_key": codec.extras.get("unnorm_key"), "policy_gripper_range": codec.policy_gripper_range,
            "policy_gripper_convention": codec.policy_gripper_convention,
            "env_gripper_convention": codec.env_gripper_convention, "binarize_gripper": codec.binarize_gripper}


__all__ = ["DEFAULTS", "make_codec", "resolve", "saved_fields"]
