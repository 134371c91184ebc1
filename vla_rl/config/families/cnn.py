"""`model.family: cnn`: a small CNN/MLP policy with 256-bin action tokens, for quick baselines (vla_rl/models/cnn/)."""

from __future__ import annotations

from dataclasses import dataclass

from vla_rl.config.families._inputs import ChunkInputsConfig
from vla_rl.config.model import ModelConfig


@ModelConfig.register("cnn")
@dataclass
class CNNConfig(ChunkInputsConfig, ModelConfig):
    """The CNN baseline: the shared keys plus the chunk, proprio and wrist inputs."""

    family: str = "cnn"


__all__ = ["CNNConfig"]
