"""The registry of policy families and the two entry points the rest of the platform calls.

`build_policy(cfg, action_dim, cameras, proprio_dim, seed)` builds a family from config (random
weights) or loads `cfg.pretrained`; `load_policy(path)` reads the family from a saved config. A
family is a `Policy` subclass registered with `@POLICY_FAMILIES.register(name)` that implements
`build(cfg, env, seed)`, `from_pretrained(path, cfg=None)` and `set_action_decoding(...)`.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, Callable

from vla_rl.config.core import ConfigError
from vla_rl.config.model import ModelConfig
from vla_rl.models.base import Policy
from vla_rl.models.checkpoint_io import read_config
from vla_rl.registry import Registry

POLICY_FAMILIES: Registry[type[Policy]] = Registry("policy family")
PUBLISHED_FORMATS: Registry[Callable[[str, dict[str, Any]], str]] = Registry("published checkpoint format")
"""config.json model_type -> fn(path, config) naming the family that loads such a folder (families register theirs)."""

# Modules whose import registers a family; listed once here so look-ups find every family.
_FAMILY_MODULES = ("vla_rl.models.openvla.policy", "vla_rl.models.openvla_oft.policy", "vla_rl.models.cnn.policy",
                  "vla_rl.models.pi0.policy")


@dataclass(frozen=True)
class EnvFacts:
    """What a policy needs to know about the environment (plain values; models never import simulators)."""

    action_dim: int
    """Size of one action vector."""
    cameras: tuple[str, ...]
    """Camera names in the observation ("main" first)."""
    proprio_dim: int
    """Size of obs["proprio"]."""
    gripper_convention: str = "close_positive"
    """How the environment reads the last action dim ("open_positive" or "close_positive")."""


def _load_families() -> None:
    for module in _FAMILY_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise


def build_policy(cfg: ModelConfig, action_dim: int, cameras: tuple[str, ...], proprio_dim: int, seed: int,
                 gripper_convention: str = "close_positive") -> Policy:
    """A policy for an environment with these facts: loaded from `cfg.pretrained`, or built with random
    weights (seeded) from the `cfg.size` preset. LoRA is applied when `cfg.lora.enabled`."""
    _load_families()
    if cfg.family not in POLICY_FAMILIES:
        raise ConfigError(f"model.family={cfg.family!r} has a config section but no policy registered in "
                          f"POLICY_FAMILIES; registered: {POLICY_FAMILIES.names()}", key="model.family")
    family = POLICY_FAMILIES.get(cfg.family)
    env = EnvFacts(action_dim, tuple(cameras), proprio_dim, gripper_convention)
    if cfg.pretrained is not None:
        saved = saved_family(cfg.pretrained)
        if "vla_rl" in read_config(cfg.pretrained) and saved != cfg.family:
            raise ValueError(f"{cfg.pretrained} holds a {saved!r} policy but model.family={cfg.family!r}; set model.family={saved}")
        policy = family.from_pretrained(cfg.pretrained, cfg=cfg)
        _refuse_keys_the_checkpoint_fixes(cfg, policy)
        policy.set_action_decoding(gripper_convention=gripper_convention, unnorm_key=cfg.unnorm_key)
        if policy.action_dim != action_dim:
            raise ValueError(f"{cfg.pretrained} predicts {policy.action_dim} action dims but the environment takes {action_dim}")
        reads = int(getattr(policy, "meta", {}).get("proprio_dim", 0) or 0) if policy.reads_proprio else 0
        if reads and reads != proprio_dim:
            raise ConfigError(f"{cfg.pretrained} reads {reads}-D proprio but the environment gives {proprio_dim}-D; "
                              "evaluate it on the environment it was trained for, or train a checkpoint on this one's proprio",
                              key="model.pretrained")
        missing = [c for c in policy.cameras if c not in env.cameras]
        if missing:
            raise ConfigError(f"{cfg.pretrained} reads cameras {list(policy.cameras)} but the environment has "
                              f"{list(env.cameras)}; add {missing} to env.cameras", key="env.cameras")
    else:
        policy = family.build(cfg, env, seed)
    if cfg.lora.enabled:
        from vla_rl.models.lora import apply_lora, has_lora

        if not has_lora(policy.net):  # a checkpoint saved with adapters keeps its own
            policy = apply_lora(policy, cfg.lora)
    return policy


def _refuse_keys_the_checkpoint_fixes(cfg: ModelConfig, policy: Policy) -> None:
    """A build-time key set (away from its default) to another value than the loaded checkpoint's cannot act."""
    defaults = {f.name: f.default for f in dataclasses.fields(cfg)}
    for key, built in policy.build_settings().items():
        value = getattr(cfg, key)
        if value != defaults[key] and value != built:
            raise ConfigError(f"model.{key}={value!r} cannot act: {cfg.pretrained} was built with {key}={built!r}, "
                              f"which loading keeps; remove model.{key} (or set it to {built!r})", key=f"model.{key}")


def saved_family(path: str) -> str:
    """The family that loads the folder at `path`: its `vla_rl` section's, else what the format registered for
    config.json's model_type reads from the files there (an OpenVLA folder with OFT's action head is openvla_oft)."""
    _load_families()
    config = read_config(path)
    if "vla_rl" in config:
        return config["vla_rl"]["family"]
    model_type = config.get("model_type") or config.get("type")  # LeRobot's policy configs name it `type`
    if model_type is None:
        raise ConfigError(f"{path}/config.json names neither vla_rl.family nor model_type; it is not a policy checkpoint")
    if model_type not in PUBLISHED_FORMATS:
        raise ConfigError(f"{path}/config.json has model_type={model_type!r}, which no family loads; "
                          f"known: {PUBLISHED_FORMATS.names()}")
    return PUBLISHED_FORMATS.get(model_type)(path, config)


def load_policy(path: str, gripper_convention: str | None = None, unnorm_key: str | None = None) -> Policy:
    """Load any saved policy; the family comes from its config.json. `gripper_convention` and
    `unnorm_key` override what the checkpoint recorded (e.g. serving it for another robot)."""
    _load_families()
    policy = POLICY_FAMILIES.get(saved_family(path)).from_pretrained(path, unnorm_key=unnorm_key)
    if gripper_convention is not None:
        policy.set_action_decoding(gripper_convention=gripper_convention)
    return policy


__all__ = ["POLICY_FAMILIES", "PUBLISHED_FORMATS", "EnvFacts", "build_policy", "load_policy", "saved_family"]
