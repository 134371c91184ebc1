"""`model.family: openvla_oft`: a chunk of action tokens in one parallel pass (vla_rl/models/openvla_oft/)."""

from __future__ import annotations

from dataclasses import dataclass

from vla_rl.config.families._inputs import ChunkInputsConfig
from vla_rl.config.families.openvla import OpenVLAConfig
from vla_rl.config.model import ModelConfig


@ModelConfig.register("openvla_oft")
@dataclass
class OpenVLAOFTConfig(ChunkInputsConfig, OpenVLAConfig):
    """OpenVLA-OFT: OpenVLA's keys plus the chunk, proprio and wrist inputs and the attention pattern."""

    family: str = "openvla_oft"
    bidirectional_prompt: bool = False
    """Attend bidirectionally over the whole sequence (released OFT checkpoints), not only the action block
    (was `model.oft_bidirectional_prompt`)."""


__all__ = ["OpenVLAOFTConfig"]
