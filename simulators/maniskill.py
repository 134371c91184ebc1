"""The "maniskill" backend: ManiSkill3 tasks on CPU physics, one env per spawned worker process.

Tasks: `maniskill_tasks.MANISKILL_TASKS` (suites "default" and "all"); observation, action and
reward are described in `maniskill_env.py`. Reset ids are ManiSkill seeds: equal ids give
identical first observations. `get_state`/`set_state` snapshot the SAPIEN scene (cheap).

Speed on a CPU-only machine (lavapipe): ~14 RGB steps/s per process and ~11 s to build the first
env (shader compilation); vectorise across cores with `num_workers`.

GPU physics (one batched scene, `sim_backend="gpu"`, thousands of envs per GPU) is not wired in
yet: it would be a second registered backend holding all N envs in one process and returning
torch tensors of the same shapes; this CPU backend stays the default on machines without CUDA.
"""

from __future__ import annotations

import os

from simulators.maniskill_tasks import MANISKILL_TASKS, TASK_SUITES
from simulators.registry import ENV_BACKENDS
from simulators.subproc import SubprocVectorEnv, WorkerPlan
from vla_rl.config.core import ConfigError
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
        meta = MANISKILL_TASKS.get(cfg.task)
        if meta is None:
            raise ConfigError(
                f"env.task={cfg.task!r} is not a supported ManiSkill task; use one of {sorted(MANISKILL_TASKS)} "
                "(add an entry with its instruction to simulators/maniskill_tasks.py for another task)"
            )
        if cfg.image_protocol != "raw":
            raise ConfigError(f"env.image_protocol={cfg.image_protocol} is LIBERO's published preprocessing; "
                              "ManiSkill renders at env.image_size: set env.image_protocol=raw")
        if "wrist" in cfg.cameras and meta.wrist_robot is None:
            raise ConfigError(f"ManiSkill task {cfg.task} has no wrist camera; set env.cameras=[main]")
        if cfg.reward_mode == "dense" and not meta.dense_reward:
            raise ConfigError(f"ManiSkill task {cfg.task} has no dense reward; set env.reward_mode=sparse")
        if cfg.spawn_scale != 1.0 and not meta.spawn_group:
            supported = sorted(t for t, m in MANISKILL_TASKS.items() if m.spawn_group)
            raise ConfigError(
                f"env.spawn_scale={cfg.spawn_scale} is not supported by {cfg.task} (supported: {supported}); "
                "set env.spawn_scale=1.0 or add the task's spawn_group to simulators/maniskill_tasks.py"
            )
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
