"""`env.backend: libero`: LIBERO suites on robosuite/MuJoCo (simulators/libero.py)."""

from __future__ import annotations

from dataclasses import dataclass

from vla_rl.config.core import check
from vla_rl.config.env import EnvConfig


@EnvConfig.register("libero")
@dataclass
class LiberoEnvConfig(EnvConfig):
    """LIBERO: the shared keys plus the benchmark protocol's settle steps."""

    backend: str = "libero"
    settle_steps: int = 10
    """No-op steps run after every reset so objects settle (not counted as episode steps)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.settle_steps >= 0, f"env.settle_steps={self.settle_steps} must be >= 0")


__all__ = ["LiberoEnvConfig"]
