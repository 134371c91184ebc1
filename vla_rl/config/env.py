"""The `env` section of a config: which simulator backend, task and vectorisation to build.

`env.backend` chooses the section's class (`vla_rl/config/choice.py`): `EnvConfig` holds the keys
every backend reads, and each backend's class in `vla_rl/config/backends/` adds its own (a key of
another backend is refused, naming the backends that read it). `simulators.make_env(cfg)` turns
the config into a `VectorEnv` through the `ENV_BACKENDS` registry; a backend refuses values it
cannot honour (e.g. a wrist camera on a task whose robot has none) with a message naming the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vla_rl.config.choice import ChoiceSection
from vla_rl.config.core import check

CAMERAS = ("main", "wrist")


@dataclass
class EnvConfig(ChoiceSection, section="env", selector="backend", package="vla_rl.config.backends"):
    """One vectorised environment: N copies of one task (or one LIBERO suite) in worker processes (keys of every backend)."""

    # --- what to simulate
    backend: str = "maniskill"
    """Registered backend; picks this section's class (vla_rl/config/backends/, `simulators.ENV_BACKENDS`): maniskill, libero."""
    task: str = "PickCube-v1"
    """Task id: a ManiSkill env id ("PickCube-v1"), or a LIBERO suite ("libero_spatial") or one of its tasks ("libero_spatial/3")."""
    reward_mode: Literal["sparse", "dense"] = "sparse"
    """"sparse": 1 on the success step, else 0; "dense": the task's normalised shaped reward (ManiSkill only)."""
    max_episode_steps: int | None = None
    """Truncate episodes after this many steps; None = the task's or benchmark's own limit."""

    # --- observations
    image_size: int = 128
    """Height and width (square) of every camera image, pixels."""
    cameras: tuple[str, ...] = ("main",)
    """Cameras in obs["images"]: "main" (third-person view) and/or "wrist"."""
    image_protocol: Literal["raw", "openvla"] = "raw"
    """How a rendered frame becomes the policy's image (`simulators/image_protocol.py`): "raw" renders
    at image_size and passes it on; "openvla" (LIBERO) is the published OpenVLA/OFT evaluation's
    preprocessing, which their released checkpoints expect: a 256 px render, JPEG round trip, Lanczos
    resize to image_size (224 there) and a centre crop of 90% of the area, on every camera."""

    # --- vectorisation and episodes
    num_envs: int = 2
    """Number of environments stepped together (N)."""
    num_workers: int | None = None
    """Worker processes holding the N envs; None = min(num_envs, CPU cores). LIBERO always uses one per env."""
    terminate_on_success: bool = True
    """False: a success does not end the episode; the task keeps rewarding the success state until
    the time limit (how ManiSkill's PPO baselines train with dense rewards, where ending on success
    would make success worth less than hovering near it). Success counts once it happens. ManiSkill
    only; demonstrations always end on success."""
    auto_reset: bool = True
    """True: reset a finished env right away (PPO, partial reset); False: fixed-length episodes (GRPO)."""
    seed: int = 0
    """First reset id handed out by the reset cursor (a seed for ManiSkill, an init-state index for LIBERO)."""

    # --- robustness
    step_timeout_s: float = 60.0
    """Seconds allowed per env-step (a chunk of K actions on a worker with M envs gets K*M times this); a worker that overruns is restarted."""
    start_timeout_s: float = 300.0
    """Seconds a worker may take to build its env (shader compilation included), and the limit of one reset call."""

    def __post_init__(self) -> None:
        check(bool(self.backend), "env.backend must name a registered backend, e.g. maniskill or libero")
        check(bool(self.task), "env.task must name a task, e.g. PickCube-v1 or libero_spatial")
        check(self.num_envs >= 1, f"env.num_envs={self.num_envs} must be at least 1")
        check(
            self.num_workers is None or 1 <= self.num_workers <= self.num_envs,
            f"env.num_workers={self.num_workers} must be null or between 1 and env.num_envs={self.num_envs}",
        )
        check(16 <= self.image_size <= 1024, f"env.image_size={self.image_size} must be between 16 and 1024 pixels")
        check(
            self.image_protocol != "openvla" or self.image_size <= 256,
            f"env.image_size={self.image_size}: the openvla image protocol renders at 256 px and resizes down; "
            "use env.image_size <= 256 (224 as in the reference) or env.image_protocol=raw",
        )
        check(len(self.cameras) >= 1, "env.cameras must list at least one camera, e.g. [main]")
        unknown = [c for c in self.cameras if c not in CAMERAS]
        check(not unknown, f"env.cameras has unknown camera(s) {unknown}; use a subset of {list(CAMERAS)}")
        check(len(set(self.cameras)) == len(self.cameras), f"env.cameras={list(self.cameras)} lists a camera twice")
        check(
            self.max_episode_steps is None or self.max_episode_steps >= 1,
            f"env.max_episode_steps={self.max_episode_steps} must be null (task default) or at least 1",
        )
        check(self.seed >= 0, f"env.seed={self.seed} must be >= 0 (it is the first reset id)")
        check(self.step_timeout_s > 0, f"env.step_timeout_s={self.step_timeout_s} must be positive")
        check(self.start_timeout_s > 0, f"env.start_timeout_s={self.start_timeout_s} must be positive")

    @property
    def image_hw(self) -> tuple[int, int]:
        """(height, width) of every image."""
        return (self.image_size, self.image_size)
