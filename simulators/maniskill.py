"""The "maniskill" backend: ManiSkill3 tasks on CPU physics, one env per spawned worker process.

Tasks: `maniskill_tasks.MANISKILL_TASKS` (suites "default" and "all"); observation, action and
reward are described in `maniskill_env.py`. Reset ids are ManiSkill seeds: equal ids give
identical first observations. `get_state`/`set_state` snapshot the SAPIEN scene (cheap).

Speed on a CPU-only machine (lavapipe): ~14 RGB steps/s per process and ~11 s to build the first
env (shader compilation); vectorise across cores with `num_workers`.

GPU physics (thousands of envs per GPU in one process, torch tensors on the device) is the
"maniskill_gpu" backend (`maniskill_gpu.py`); both share `maniskill_scene.py`. This CPU backend
stays the default.
"""

from __future__ import annotations

import os

from simulators.maniskill_scene import check_config
from simulators.maniskill_tasks import TASK_SUITES
from simulators.registry import ENV_BACKENDS
from simulators.subproc import SubprocVectorEnv, WorkerPlan
from vla_rl.config.backends.maniskill import ManiSkillEnvConfig


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@ENV_BACKENDS.register("maniskill")
class ManiSkillVectorEnv(SubprocVectorEnv):
    """N ManiSkill3 envs of one task (CPU physics), spread over worker processes."""

    @classmethod
    def task_suites(cls) -> dict[str, tuple[str, ...]]:
        """Suite name -> task ids ("default": offline 7-d Panda tasks; "all": every supported task)."""
        return dict(TASK_SUITES)

    @classmethod
    def from_config(cls, cfg: ManiSkillEnvConfig) -> "ManiSkillVectorEnv":
        check_config(cfg)
        num_workers = cfg.num_workers or min(cfg.num_envs, available_cores())
        plan = WorkerPlan(
            factory="simulators.maniskill_env:ManiSkillSingleEnv",
            kwargs=dict(
                task=cfg.task,
                image_size=cfg.image_size,
                cameras=tuple(cfg.cameras),
                reward_mode=cfg.reward_mode,
                max_episode_steps=cfg.max_episode_steps,
                terminate_on_success=cfg.terminate_on_success,
                mesh_detail=cfg.mesh_detail,
                spawn_scale=cfg.spawn_scale,
            ),
            num_workers=num_workers,
            env_vars={},
        )
        return cls.from_env_config("maniskill", cfg, plan)
