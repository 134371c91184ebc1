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
task's spawn group (`maniskill_tasks.py`) towards the table's origin after ManiSkill's own reset.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulators.maniskill_tasks import MANISKILL_TASKS
from simulators.rotations import quat_wxyz_to_xyzw, quat_xyzw_to_axis_angle
from simulators.single_env import SingleEnv, SingleEnvInfo, SingleObs, StepOutcome

CONTROL_MODE = "pd_ee_delta_pose"
CAMERA_NAMES = {"main": "base_camera", "wrist": "hand_camera"}
"""Our camera name -> ManiSkill sensor name."""
REWARD_MODES = {"sparse": "sparse", "dense": "normalized_dense"}


def missing_assets(task: str) -> list[str]:
    """ManiSkill asset ids that `task` needs and that are not downloaded."""
    from mani_skill.utils import assets
    from mani_skill.utils.registration import REGISTERED_ENVS

    missing: list[str] = []
    for asset_id in REGISTERED_ENVS[task].asset_download_ids or []:
        if asset_id in assets.DATA_GROUPS:
            ids = assets.expand_data_group_into_individual_data_source_ids(asset_id)
        else:
            ids = [asset_id]
        missing += [i for i in ids if not assets.is_data_source_downloaded(i)]
    return missing


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
        import gymnasium as gym
        import mani_skill.envs  # noqa: F401 - registers the tasks
        import torch
        from mani_skill.utils.registration import REGISTERED_ENVS

        self._torch = torch
        meta = MANISKILL_TASKS[task]
        missing = missing_assets(task)
        if missing:
            raise RuntimeError(
                f"ManiSkill task {task} needs assets that are not downloaded ({', '.join(missing)}); "
                f"download them with `python -m mani_skill.utils.download_asset {task}` or pick an offline task"
            )
        kwargs: dict[str, Any] = dict(
            obs_mode="rgb",
            control_mode=CONTROL_MODE,
            num_envs=1,
            sim_backend="cpu",
            sensor_configs=dict(width=image_size, height=image_size),
            reward_mode=REWARD_MODES[reward_mode],
        )
        if not torch.cuda.is_available():  # ManiSkill would try CUDA first and log a warning per env
            kwargs["render_backend"] = "sapien_cpu"
        if "wrist" in cameras:
            kwargs["robot_uids"] = meta.wrist_robot
        try:
            self._env = gym.make(task, **kwargs).unwrapped
        except EOFError:
            raise RuntimeError(
                f"ManiSkill task {task} asked to download assets; run "
                f"`python -m mani_skill.utils.download_asset {task}` first"
            ) from None
        self._task = task
        self._meta = meta
        self._cameras = cameras
        self._terminate_on_success = terminate_on_success
        self._mesh_detail = mesh_detail
        if spawn_scale != 1.0 and not meta.spawn_group:
            raise ValueError(f"spawn_scale={spawn_scale}: {task} declares no spawn_group in maniskill_tasks.py")
        self._spawn_scale = spawn_scale
        self._max_steps = max_episode_steps or REGISTERED_ENVS[task].max_episode_steps
        space = self._env.single_action_space
        self._info = SingleEnvInfo(
            action_dim=int(space.shape[0]),
            control_hz=float(self._env.control_freq),
            max_episode_steps=int(self._max_steps),
            proprio_dim=8,
            action_low=tuple(float(x) for x in space.low),
            action_high=tuple(float(x) for x in space.high),
            gripper_convention="open_positive",
            extras={
                "control_mode": CONTROL_MODE,
                "sim_backend": "cpu",
                "robot": str(self._env.robot_uids),
                "proprio": "tcp_pos_base(3) + tcp_axis_angle_base(3) + finger_qpos(2)",
                "reward": REWARD_MODES[reward_mode],
                "goal_marker_shown": meta.show_goal,
                "mesh_detail": mesh_detail,
                "spawn_scale": spawn_scale,
            },
        )

    def info(self) -> SingleEnvInfo:
        return self._info

    def reset(self, reset_id: int) -> SingleObs:
        raw, _ = self._env.reset(seed=int(reset_id))
        revealed = self._meta.show_goal and self._reveal_goal()
        if revealed | self._simplify_meshes() | self._shrink_spawn():
            raw = self._env.get_obs()
        return self._obs(raw)

    def step(self, action: np.ndarray) -> StepOutcome:
        a = self._torch.as_tensor(np.asarray(action, dtype=np.float32))[None]
        raw, reward, terminated, _, info = self._env.step(a)
        if not self._terminate_on_success:  # ManiSkill terminates on success or fail: keep only fail
            terminated = info["fail"] if "fail" in info else [False]
        return StepOutcome(
            obs=self._obs(raw),
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

    def _reveal_goal(self) -> bool:
        """Un-hide the goal marker (hidden again by every scene rebuild); True if it was hidden."""
        env = self._env
        goal = getattr(env, "goal_site", None)
        if goal is None or not any(o is goal for o in env._hidden_objects):
            return False
        env._hidden_objects = [o for o in env._hidden_objects if o is not goal]
        goal.show_visual()
        return True

    def _shrink_spawn(self) -> bool:
        """Scale the spawn group's offset from the table origin by `spawn_scale`; True if anything moved."""
        if self._spawn_scale == 1.0:
            return False
        from mani_skill.utils.structs.pose import Pose

        actors = [getattr(self._env, name) for name in self._meta.spawn_group]
        first = actors[0].pose.p[0]
        shift = first.clone()
        shift[:2] *= self._spawn_scale - 1.0
        shift[2] = 0.0
        for actor in actors:
            pose = actor.pose
            actor.set_pose(Pose.create_from_pq(p=pose.p + shift, q=pose.q))
        return True

    def _simplify_meshes(self) -> bool:
        """Lighter visual meshes after a scene (re)build (`low_poly.py`); True if any changed."""
        if self._mesh_detail >= 1.0:
            return False
        from simulators.low_poly import simplify_scene

        return any(simplify_scene(s, self._mesh_detail).bodies for s in self._env.scene.sub_scenes)

    def _obs(self, raw: dict[str, Any]) -> SingleObs:
        sensors = raw["sensor_data"]
        images = {c: sensors[CAMERA_NAMES[c]]["rgb"][0].cpu().numpy() for c in self._cameras}
        agent = self._env.agent
        pose = (agent.robot.pose.inv() * agent.tcp.pose).raw_pose[0].cpu().numpy()
        qpos = raw["agent"]["qpos"][0].cpu().numpy()
        fingers = qpos[-2:] if qpos.shape[0] == 9 else np.zeros(2, dtype=np.float32)
        proprio = np.concatenate([pose[:3], quat_xyzw_to_axis_angle(quat_wxyz_to_xyzw(pose[3:])), fingers])
        return {"images": images, "proprio": proprio.astype(np.float32), "instruction": self._meta.instruction}
