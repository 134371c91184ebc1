"""`model.family: openvla_oft`: a chunk of action tokens in one parallel pass (vla_rl/models/openvla_oft/)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vla_rl.config.core import check
from vla_rl.config.families._inputs import ChunkInputsConfig
from vla_rl.config.families.openvla import OpenVLAConfig
from vla_rl.config.model import ModelConfig


@ModelConfig.register("openvla_oft")
@dataclass
class OpenVLAOFTConfig(ChunkInputsConfig, OpenVLAConfig):
    """OpenVLA-OFT: OpenVLA's keys plus the chunk, proprio and wrist inputs, the attention pattern and the
    action head (docs/models.md, openvla_oft)."""

    family: str = "openvla_oft"
    use_wrist: bool | None = None
    """Feed the wrist camera as a second image (needs a "wrist" camera in env.cameras); None: the checkpoint's
    (a published folder records no camera count: its L1 head means OFT's LIBERO release, main + wrist; set
    false for a one-image OFT fine-tune, OFT's `num_images_in_input 1`), no wrist for a new model."""
    bidirectional_prompt: bool = False
    """Attend bidirectionally over the whole sequence (released OFT checkpoints), not only the action block
    (was `model.oft_bidirectional_prompt`)."""

    # --- action head ----------------------------------------------------------------------
    action_head: Literal["tokens", "l1_regression"] | None = None
    """"tokens" (256-bin action ids from the LM head) or "l1_regression" (OFT's continuous MLP head, the one
    released LIBERO checkpoints use); None: the checkpoint's (a folder with action_head--*.pt has the L1 head),
    tokens for a new model."""
    action_distribution: Literal["gaussian", "laplace"] | None = None
    """L1 head only: the distribution sampled around the regressed action for RL; None: the checkpoint's, or gaussian."""
    action_scale: float | None = None
    """L1 head only: initial (or fixed) std of the Gaussian / scale b of the Laplace, in normalised action units,
    replacing a saved one; None: the checkpoint's learned scale, or 0.1 for a head without one."""
    learn_action_scale: bool | None = None
    """L1 head only: train the scale (one log-scale per action dim); None: the checkpoint's, or true."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.action_scale is None or self.action_scale > 0,
              f"model.action_scale={self.action_scale} must be > 0 (or null for the checkpoint's)")
        if self.action_head == "tokens":
            stray = [k for k in ("action_distribution", "action_scale", "learn_action_scale") if getattr(self, k) is not None]
            check(not stray, f"model.{stray[0] if stray else ''} acts only with model.action_head=l1_regression; "
                  "remove it or choose the L1 head")


__all__ = ["OpenVLAOFTConfig"]
