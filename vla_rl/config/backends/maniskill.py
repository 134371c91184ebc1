"""`env.backend: maniskill`: ManiSkill3 tasks on CPU physics (simulators/maniskill.py)."""

from __future__ import annotations

from dataclasses import dataclass

from vla_rl.config.core import check
from vla_rl.config.env import EnvConfig


@EnvConfig.register("maniskill")
@dataclass
class ManiSkillEnvConfig(EnvConfig):
    """ManiSkill3: the shared keys plus the spawn region and the renderer's mesh detail."""

    backend: str = "maniskill"
    spawn_scale: float = 1.0
    """Shrink the region objects spawn in (PushCube/PullCube): the cube's xy offset from the table's
    origin is multiplied by this, and its goal moves with it. 1.0 = the task as published (PushCube:
    a 20 x 20 cm square); 0.25 = a 5 x 5 cm square. Every reset id still gives its own state."""
    mesh_detail: float = 1.0
    """Fraction of triangles kept in large visual meshes (physics unchanged). 1.0 = the original
    meshes; 0.1 renders ~3x faster on a CPU with images within about one grey level of the original
    on average (`simulators/low_poly.py`, measured by `tools/bench_sim.py --mesh-detail`)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(
            0.0 < self.mesh_detail <= 1.0,
            f"env.mesh_detail={self.mesh_detail} must be in (0, 1]: the fraction of visual-mesh triangles kept",
        )
        check(
            0.0 < self.spawn_scale <= 1.0,
            f"env.spawn_scale={self.spawn_scale} must be in (0, 1]: the fraction of the task's spawn region kept",
        )


__all__ = ["ManiSkillEnvConfig"]
