"""The `model` section of a config: which policy family, which weights, which size, LoRA, dtype.

`model.family` chooses the section's class (`vla_rl/config/choice.py`): `ModelConfig` holds the keys
every family reads, and each family's class in `vla_rl/config/families/` adds its own (a key of
another family is refused, naming the families that read it). `vla_rl.models.registry.build_policy`
turns a model config plus what the environment declares (action dim, cameras, proprio size,
gripper convention) into a `Policy`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vla_rl.config.choice import ChoiceSection
from vla_rl.config.core import check


@dataclass
class LoraConfig:
    """Low-rank adapters (through peft) on the policy network; the value head stays fully trainable."""

    enabled: bool = False
    """Train LoRA adapters instead of every weight."""
    rank: int = 32
    """Adapter rank r (32 is the value RL recipes for OpenVLA use)."""
    alpha: float = 32.0
    """LoRA scaling numerator (scale = alpha / rank)."""
    dropout: float = 0.0
    """Dropout on the adapter input (0 keeps act/evaluate log-probs identical)."""
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    """Linear-layer name suffixes that get adapters, in every part of the network ("all-linear": all of them)."""

    def __post_init__(self) -> None:
        check(self.rank >= 1, f"model.lora.rank={self.rank} must be >= 1")
        check(self.alpha > 0, f"model.lora.alpha={self.alpha} must be > 0")
        check(0.0 <= self.dropout < 1.0, f"model.lora.dropout={self.dropout} must be in [0, 1)")
        check(len(self.target_modules) > 0, "model.lora.target_modules is empty; name at least one module, e.g. q_proj")


@dataclass
class ModelConfig(ChoiceSection, section="model", selector="family", package="vla_rl.config.families"):
    """Which policy to build or load, and how it maps tokens to the environment's actions (keys of every family)."""

    # --- what to build --------------------------------------------------------------------
    family: str = "openvla"
    """Registered policy family; picks this section's class (vla_rl/config/families/: openvla, openvla_oft, cnn, pi0)."""
    pretrained: str | None = None
    """Local checkpoint directory (Hugging Face layout); None builds `size` with random weights."""
    size: str = "tiny"
    """Size preset used when `pretrained` is None (tiny, small; openvla also 7b; see docs/models.md)."""
    image_size: int | None = None
    """Square side the policy resizes images to; None: the preset's (or checkpoint's) size."""
    value_head: bool = True
    """Add an MLP value head on the hidden state before the first action token (PPO needs it)."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Parameter dtype (float32 on CPU; bfloat16 for large models on GPU)."""
    lora: LoraConfig = field(default_factory=LoraConfig)
    """LoRA adapters (off by default)."""

    # --- action decoding ------------------------------------------------------------------
    unnorm_key: str | None = None
    """Dataset whose q01/q99 statistics un-normalise actions; None: the checkpoint's choice (or its only one)."""
    policy_gripper_range: Literal["symmetric", "unit"] | None = None
    """Range of the policy's gripper output, "symmetric" [-1, 1] or "unit" [0, 1]; None: the checkpoint's
    (OpenVLA checkpoints: unit; new models: symmetric)."""
    policy_gripper_convention: Literal["open_positive", "close_positive", "same_as_env"] | None = None
    """Sign convention of the policy's gripper; None: the checkpoint's (new models: same_as_env)."""
    binarize_gripper: bool | None = None
    """Snap the gripper to +-1 (OpenVLA's LIBERO evaluation does); None: the checkpoint's (new models: false)."""

    def __post_init__(self) -> None:
        check(self.image_size is None or self.image_size >= 8, f"model.image_size={self.image_size} must be >= 8 (or null)")
        check(
            self.pretrained is not None or bool(self.size),
            "model.size is empty; name a size preset (e.g. tiny) or set model.pretrained to a checkpoint directory",
        )


__all__ = ["LoraConfig", "ModelConfig"]
