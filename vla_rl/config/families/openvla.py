"""`model.family: openvla`: 7 action tokens per step, decoded autoregressively (vla_rl/models/openvla/)."""

from __future__ import annotations

from dataclasses import dataclass

from vla_rl.config.core import check
from vla_rl.config.model import ModelConfig


@ModelConfig.register("openvla")
@dataclass
class OpenVLAConfig(ModelConfig):
    """OpenVLA: the shared keys plus the prompt length."""

    family: str = "openvla"
    max_prompt_tokens: int = 128
    """Fixed length prompts are padded to, so rollout buffers stack across steps."""
    gradient_checkpointing: bool = False
    """Recompute every ViT block's and LM layer's activations in the backward instead of keeping them
    (a 7b model's training minibatch then fits one GPU; vla_rl/models/openvla/memory_plan.py)."""

    @property
    def action_chunk(self) -> int:
        """Actions per forward pass: always 1 (model.family=openvla_oft decodes chunks)."""
        return 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.max_prompt_tokens >= 8, f"model.max_prompt_tokens={self.max_prompt_tokens} must be >= 8")


__all__ = ["OpenVLAConfig"]
