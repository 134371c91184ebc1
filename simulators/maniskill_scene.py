"""What both ManiSkill3 backends do to a ManiSkill env, batched over its parallel envs.

The CPU backend ("maniskill", one env per worker process, `maniskill_env.py`) and the GPU backend
("maniskill_gpu", N envs in one GPU scene set, `maniskill_gpu.py`) build, observe and reset a
ManiSkill env the same way through these functions; on CPU physics the batch is 1.

- `check_config(cfg)`: the config checks every ManiSkill backend applies (task known, cameras,
  reward mode, spawn_scale support); ConfigErrors name the fix.
- `make_env(...)`: `gym.make` with our observation/action/reward settings; a task whose assets are
  missing fails naming the download command, never a prompt.
- `prepare_scene(env, meta, mesh_detail)`: after a scene (re)build, show the hidden goal marker
  (`show_goal`) and swap in lighter visual meshes (`mesh_detail`).
- `install_spawn_scale(env, meta, scale)`: from then on every reset (full or partial) moves the
  task's spawn group towards the table's origin, inside ManiSkill's own reset, so the observation
  the reset renders already shows it.
- `seeded_reset(env, env_idx, reset_id)`: reset the envs `env_idx` to the state of `reset_id`, a
  pure function of the id: torch's and the episode numpy RNG are seeded with it and the task draws
  a batch of one. On CPU physics this is exactly ManiSkill's `reset(seed=reset_id)`.
- `proprio(env)`, `images(raw, cameras)`: the observation (torch tensors on the env's device).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from simulators.maniskill_tasks import MANISKILL_TASKS, ManiSkillTask
from vla_rl.config.core import ConfigError

if TYPE_CHECKING:
    import torch

    from vla_rl.config.backends.maniskill import ManiSkillEnvConfig

CONTROL_MODE = "pd_ee_delta_pose"
CAMERA_NAMES = {"main": "base_camera", "wrist": "hand_camera"}
"""Our camera name -> ManiSkill sensor name."""
REWARD_MODES = {"sparse": "sparse", "dense": "normalized_dense"}
PROPRIO_LAYOUT = "tcp_pos_base(3) + tcp_axis_angle_base(3) + finger_qpos(2)"
PROPRIO_DIM = 8


def check_config(cfg: ManiSkillEnvConfig) -> ManiSkillTask:
    """The task's metadata, or a ConfigError for a setting no ManiSkill backend can honour."""
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
    return meta


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


def default_max_steps(task: str) -> int:
    """The task's registered episode limit."""
    from mani_skill.utils.registration import REGISTERED_ENVS

    return int(REGISTERED_ENVS[task].max_episode_steps)


def make_env(task: str, *, image_size: int, cameras: tuple[str, ...], reward_mode: str, num_envs: int,
             sim_backend: str, render_backend: str | None = None) -> Any:
    """The unwrapped ManiSkill env (`BaseEnv`) of `num_envs` parallel envs with our settings."""
    import gymnasium as gym
    import mani_skill.envs  # noqa: F401 - registers the tasks

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
        num_envs=num_envs,
        sim_backend=sim_backend,
        sensor_configs=dict(width=image_size, height=image_size),
        reward_mode=REWARD_MODES[reward_mode],
    )
    if render_backend is not None:
        kwargs["render_backend"] = render_backend
    if "wrist" in cameras:
        kwargs["robot_uids"] = meta.wrist_robot
    try:
        return gym.make(task, **kwargs).unwrapped
    except EOFError:
        raise RuntimeError(
            f"ManiSkill task {task} asked to download assets; run "
            f"`python -m mani_skill.utils.download_asset {task}` first"
        ) from None


def spec_extras(env: Any, meta: ManiSkillTask, reward_mode: str, sim_backend: str, mesh_detail: float,
                spawn_scale: float) -> dict[str, Any]:
    """The facts both backends put into `EnvSpec.extras`."""
    return {
        "control_mode": CONTROL_MODE,
        "sim_backend": sim_backend,
        "robot": str(env.robot_uids),
        "proprio": PROPRIO_LAYOUT,
        "reward": REWARD_MODES[reward_mode],
        "goal_marker_shown": meta.show_goal,
        "mesh_detail": mesh_detail,
        "spawn_scale": spawn_scale,
    }


# ------------------------------------------------------------------------------------ scene set-up


def reveal_goal(env: Any) -> bool:
    """Un-hide the goal marker ManiSkill hides from cameras (hidden again by every scene rebuild);
    True if it was hidden."""
    goal = getattr(env, "goal_site", None)
    if goal is None or not any(o is goal for o in env._hidden_objects):
        return False
    env._hidden_objects = [o for o in env._hidden_objects if o is not goal]
    goal.show_visual()
    return True


def simplify_meshes(env: Any, mesh_detail: float) -> bool:
    """Lighter visual meshes in every sub-scene (`low_poly.py`); True if any changed."""
    if mesh_detail >= 1.0:
        return False
    from simulators.low_poly import simplify_scene

    return any([simplify_scene(s, mesh_detail).bodies for s in env.scene.sub_scenes])


def prepare_scene(env: Any, meta: ManiSkillTask, mesh_detail: float) -> bool:
    """After a scene (re)build: show the goal marker and simplify meshes; True if the look changed."""
    revealed = meta.show_goal and reveal_goal(env)
    return revealed | simplify_meshes(env, mesh_detail)


def install_spawn_scale(env: Any, meta: ManiSkillTask, scale: float) -> None:
    """Make every later reset of `env` shrink the spawn group's offset from the table origin by `scale`.

    The task's `_initialize_episode` is wrapped on this instance: after the task placed the spawn
    group for the envs being reset, the first actor's xy offset from the origin is multiplied by
    `scale` and every actor of the group is moved by the same shift. It runs inside ManiSkill's
    reset (the reset mask selects the envs being reset, GPU buffers are applied afterwards), so a
    partial reset moves only the reset envs and the observation the reset renders shows the result.
    """
    if scale == 1.0:
        return
    if not meta.spawn_group:
        raise ValueError(f"spawn_scale={scale}: the task declares no spawn_group in maniskill_tasks.py")
    from mani_skill.utils.structs.pose import Pose

    original = env._initialize_episode

    def initialize_and_shrink(env_idx: torch.Tensor, options: dict) -> None:
        original(env_idx, options)
        actors = [getattr(env, name) for name in meta.spawn_group]
        shift = actors[0].pose.p[env_idx].clone()
        shift[:, :2] *= scale - 1.0
        shift[:, 2] = 0.0
        for actor in actors:
            pose = actor.pose
            actor.set_pose(Pose.create_from_pq(p=pose.p[env_idx] + shift, q=pose.q[env_idx]))

    env._initialize_episode = initialize_and_shrink


# ------------------------------------------------------------------------------------ resets


@contextlib.contextmanager
def observations_off(env: Any) -> Iterator[None]:
    """ManiSkill computes no observation (no rendering) inside this block: `reset`/`step` return {}.

    Rewards do not read observations in the supported tasks, so they are unaffected."""
    mode = env._obs_mode
    env._obs_mode = "none"
    try:
        yield
    finally:
        env._obs_mode = mode


def seeded_reset(env: Any, env_idx: torch.Tensor, reset_id: int) -> None:
    """Reset the envs `env_idx` of `env` to the state named by `reset_id` (no observation is made).

    ManiSkill's `reset(seed=...)` seeds torch with the first seed and lets the task draw one batch
    for all envs being reset, so an env's state would depend on which envs were reset with it (and
    rebuilding its per-env numpy RNGs costs ~0.4 ms per parallel env per call). Here torch's RNG
    (inside a fork, so the caller's stream is untouched) and the episode's numpy RNG are seeded with
    `reset_id` and the task draws for these envs only: equal ids give equal states, whatever else
    is reset. On CPU physics (one env) this is exactly `reset(seed=reset_id)`.
    """
    import torch

    devices = [env.device] if env.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), observations_off(env):
        torch.manual_seed(int(reset_id))
        env._episode_rng = np.random.RandomState(int(reset_id))
        env.reset(options={"env_idx": env_idx})


# ------------------------------------------------------------------------------------ observation


def axis_angle_from_wxyz(quat: torch.Tensor) -> torch.Tensor:
    """(..., 4) unit quaternions (w, x, y, z) -> (..., 3) axis-angle, robosuite's convention.

    The angle is 2 acos(w) in [0, 2 pi], not wrapped (what LIBERO's reference proprio uses, see
    `rotations.quat_xyzw_to_axis_angle`); a rotation of ~0 gives zeros. Computed in float64."""
    import torch

    q = quat.double()
    w = q[..., :1].clamp(-1.0, 1.0)
    den = torch.sqrt(1.0 - w * w)
    safe = torch.where(den < 1e-9, torch.ones_like(den), den)
    aa = q[..., 1:4] * 2.0 * torch.acos(w) / safe
    return torch.where(den < 1e-9, torch.zeros_like(aa), aa).float()


def proprio(env: Any, raw: dict[str, Any]) -> torch.Tensor:
    """(N, 8) float32: TCP position and axis-angle in the robot base frame, then the finger joints
    (zeros for a robot without fingers) - the layout LIBERO's proprio has."""
    import torch

    agent = env.agent
    pose = (agent.robot.pose.inv() * agent.tcp.pose).raw_pose
    qpos = raw["agent"]["qpos"]
    fingers = qpos[:, -2:] if qpos.shape[1] == 9 else torch.zeros(qpos.shape[0], 2, device=qpos.device)
    return torch.cat([pose[:, :3].float(), axis_angle_from_wxyz(pose[:, 3:]), fingers.float()], dim=1)


def images(raw: dict[str, Any], cameras: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """{camera: (N, H, W, 3) uint8} from a raw ManiSkill RGB observation."""
    return {c: raw["sensor_data"][CAMERA_NAMES[c]]["rgb"] for c in cameras}


__all__ = ["CAMERA_NAMES", "CONTROL_MODE", "PROPRIO_DIM", "REWARD_MODES", "axis_angle_from_wxyz", "check_config",
           "default_max_steps", "images", "install_spawn_scale", "make_env", "missing_assets", "observations_off",
           "prepare_scene", "proprio", "reveal_goal", "seeded_reset", "simplify_meshes", "spec_extras"]
