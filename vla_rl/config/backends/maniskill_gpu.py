"""`env.backend: maniskill_gpu`: ManiSkill3 tasks on GPU physics, N envs in this process (simulators/maniskill_gpu.py).

It reads the ManiSkill keys (`spawn_scale`, `mesh_detail`) and the shared ones; `env.num_workers`
means the number of GPU scenes the N envs are split into (each is stepped as a whole; pipelined
rollouts put one or more scenes in each stage; null = one scene, or the plan's count).
"""

from __future__ import annotations

from dataclasses import dataclass

from vla_rl.config.backends.maniskill import ManiSkillEnvConfig
from vla_rl.config.env import EnvConfig


@EnvConfig.register("maniskill_gpu")
@dataclass
class ManiSkillGPUEnvConfig(ManiSkillEnvConfig):
    """ManiSkill3 on GPU physics (CUDA required): the ManiSkill keys; env.num_workers counts GPU scenes."""

    backend: str = "maniskill_gpu"


__all__ = ["ManiSkillGPUEnvConfig"]
