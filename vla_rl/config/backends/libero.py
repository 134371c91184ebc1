"""`env.backend: libero`: LIBERO suites on robosuite/MuJoCo (simulators/libero.py)."""

from __future__ import annotations

from dataclasses import dataclass

from vla_rl.config.core import check
from vla_rl.config.env import EnvConfig


@EnvConfig.register("libero")
@dataclass
class LiberoEnvConfig(EnvConfig):
    """LIBERO: the shared keys plus the benchmark protocol's settle steps and the renderer's cost settings."""

    backend: str = "libero"
    settle_steps: int = 10
    """No-op steps run after every reset so objects settle (not counted as episode steps)."""
    mesh_detail: float = 1.0
    """Fraction of faces kept in the large visual-only meshes (`simulators/libero_low_poly.py`; collision
    meshes and physics unchanged). 1.0 = the scene as published, as benchmark figures are made; 0.25 made
    libero_spatial's two-camera steps ~2.6x faster on a CPU, ~1.1 grey levels from the published frame on
    average (docs/simulators.md)."""
    multisample: bool = True
    """MuJoCo's 4x multisampled offscreen buffer (anti-aliasing), as published; false made the same steps ~1.8x
    faster on a CPU, with aliased edges (~2.3 grey levels on average)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.settle_steps >= 0, f"env.settle_steps={self.settle_steps} must be >= 0")
        check(0.0 < self.mesh_detail <= 1.0,
              f"env.mesh_detail={self.mesh_detail} must be in (0, 1]: the fraction of visual-mesh faces kept")

    @property
    def published_render(self) -> bool:
        """Whether the renderer draws the scene as the published evaluations do."""
        return self.mesh_detail == 1.0 and self.multisample


__all__ = ["LiberoEnvConfig"]
