"""Keys shared by the families that decode action chunks and may read proprio and a wrist camera."""

from __future__ import annotations

from dataclasses import dataclass

from vla_rl.config.core import check


@dataclass
class ChunkInputsConfig:
    """Mixin of a family's model config (listed before `ModelConfig` among the bases)."""

    action_chunk: int = 1
    """Actions per forward pass K (8 is OFT's LIBERO chunk)."""
    use_proprio: bool = False
    """Feed `obs["proprio"]` to the policy."""
    use_wrist: bool = False
    """Feed the wrist camera as a second image (needs a "wrist" camera in env.cameras)."""

    def __post_init__(self) -> None:
        super().__post_init__()  # type: ignore[misc]  # the family's ModelConfig base
        check(self.action_chunk >= 1, f"model.action_chunk={self.action_chunk} must be >= 1")


__all__ = ["ChunkInputsConfig"]
