"""One ManiSkill3 environment (CPU physics, SAPIEN rendering) inside a worker process.

Observation:
    images["main"]:  the task's "base_camera" RGB at the configured size.
    images["wrist"]: the "hand_camera" RGB of the `panda_wristcam` robot (when requested).
    proprio (8,):    TCP position in the robot base frame (3), TCP orientation as axis-angle in the
                     base frame (3, robosuite's convention, see `rotations.py`), finger joint
                     positions (2; zeros for a robot without fingers) - the same layout as LIBERO.
Action: `pd_ee_delta_pose` (normalised to [-1, 1]: xyz delta, rotation delta (axis-angle), gripper;
+1 opens the gripper). Reward: "sparse" = the task's success (1.0) / failure (-1.0) signal,
"dense" = ManiSkill's `normalized_dense` reward. Episodes end by the task's success/fail flags
(fail only, with `terminate_on_success=False`);
the time limit is applied by the parent (`SubprocVectorEnv`), not by a gym wrapper.

Tasks that need downloaded assets fail at build time with the download command, never a prompt.
Rendering: SAPIEN picks a Vulkan device itself (a GPU, or Mesa's lavapipe on CPU-only machines).
`mesh_detail` < 1 swaps the robot's and floor's visual meshes for lighter ones after each scene
build (`low_poly.py`): ~3x faster RGB steps on a CPU, physics unchanged. `spawn_scale` < 1 moves the
task's spawn group (`maniskill_tasks.py`) towards the table's origin inside ManiSkill's reset
(`maniskill_scene.install_spawn_scale`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulators import maniskill_scene as scene
from simulators.maniskill_scene import missing_assets
from simulators.maniskill_tasks import MANISKILL_TASKS
from simulators.single_env import SingleEnv, SingleEnvInfo, SingleObs, StepOutcome


def _to_numpy(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _to_numpy(v) for k, v in tree.items()}
    return tree.cpu().numpy() if hasattr(tree, "cpu") else tree


def _to_torch(tree: Any) -> Any:
    import torch

    if isinstance(tree, dict):
        return {k: _to_torch(v) for k, v in tree.items()}
    return torch.as_tensor(tree) if isinstance(tree, np.ndarray) else tree


class ManiSkillSingleEnv(SingleEnv):
    """A ManiSkill3 task with one env (`num_envs=1`, `sim_backend="cpu"`)."""

    def __init__(
        self,
        task: str,
        image_size: int,
        cameras: tuple[str, ...],
        reward_mode: str,
        max_episode_steps: int | None,
        terminate_on_success: bool = True,
        mesh_detail: float = 1.0,
        spawn_scale: float = 1.0,
    ) -> None:
        import torch

        self._torch = torch
        meta = MANISKILL_TASKS[task]
        # Without CUDA, ManiSkill would try it first and log a warning per env.
        render = None if torch.cuda.is_available() else "sapien_cpu"
        self._env = scene.make_env(task, image_size=image_size, cameras=cameras, reward_mode=reward_mode,
                                   num_envs=1, sim_backend="cpu", render_backend=render)
        scene.install_spawn_scale(self._env, meta, spawn_scale)
        self._task = task
        self._meta = meta
        self._cameras = cameras
        self._terminate_on_success = terminate_on_success
        self._mesh_detail = mesh_detail
        self._max_steps = max_episode_steps or scene.default_max_steps(task)
        space = self._env.single_action_space
        self._info = SingleEnvInfo(
            action_dim=int(space.shape[0]),
            control_hz=float(self._env.control_freq),
            max_episode_steps=int(self._max_steps),
            proprio_dim=scene.PROPRIO_DIM,
            action_low=tuple(float(x) for x in space.low),
            action_high=tuple(float(x) for x in space.high),
            gripper_convention="open_positive",
            extras=scene.spec_extras(self._env, meta, reward_mode, "cpu", mesh_detail, spawn_scale),
        )

    def info(self) -> SingleEnvInfo:
        return self._info

    def reset(self, reset_id: int) -> SingleObs:
        raw, _ = self._env.reset(seed=int(reset_id))
        if scene.prepare_scene(self._env, self._meta, self._mesh_detail):  # the first reset builds the scene
            raw = self._env.get_obs()
        return self._obs(raw)

    def step(self, action: np.ndarray) -> StepOutcome:
        raw, reward, terminated, _, info = self._env.step(self._action(action))
        return self._outcome(self._obs(raw), reward, terminated, info)

    def step_unobserved(self, action: np.ndarray) -> StepOutcome:
        """A step inside a chunk: ManiSkill's `step` without its sensor capture, so no camera renders (obs None).
        Physics, reward, success and termination are `step`'s; the reward sees the state part of the observation.
        Rendering bounds a CPU rollout, so a policy acting in chunks of K renders 1/K of the frames."""
        env = self._env
        applied = env._step_action(self._action(action))
        env._elapsed_steps += 1
        info = env.get_info()
        reward = env.get_reward(obs=env._get_obs_state_dict(info), action=applied, info=info)
        done = self._torch.zeros(1, dtype=self._torch.bool)
        for flag in ("success", "fail"):  # as ManiSkill's step: the episode ends on success or failure
            if flag in info:
                done = done | info[flag].cpu()
        return self._outcome(None, reward, done, info)

    def observe(self) -> SingleObs:
        """The observation after a `step_unobserved`: the cameras rendered now."""
        return self._obs(self._env.get_obs())

    def _action(self, action: np.ndarray) -> Any:
        return self._torch.as_tensor(np.asarray(action, dtype=np.float32))[None]

    def _outcome(self, obs: SingleObs | None, reward: Any, terminated: Any, info: dict[str, Any]) -> StepOutcome:
        if not self._terminate_on_success:  # ManiSkill terminates on success or fail: keep only fail
            terminated = info["fail"] if "fail" in info else [False]
        return StepOutcome(
            obs=obs,
            reward=float(reward[0]),
            terminated=bool(terminated[0]),
            success=bool(info["success"][0]) if "success" in info else False,
        )

    def get_state(self) -> Any:
        return _to_numpy(self._env.get_state_dict())

    def set_state(self, state: Any) -> SingleObs:
        """Restores actors and articulations (controller targets are recomputed on the next step)."""
        self._env.set_state_dict(_to_torch(state))
        return self._obs(self._env.get_obs())

    def close(self) -> None:
        self._env.close()

    def _obs(self, raw: dict[str, Any]) -> SingleObs:
        images = {c: img[0].cpu().numpy() for c, img in scene.images(raw, self._cameras).items()}
        proprio = scene.proprio(self._env, raw)[0].cpu().numpy()
        return {"images": images, "proprio": proprio, "instruction": self._meta.instruction}


__all__ = ["ManiSkillSingleEnv", "missing_assets"]
