"""Scripted controllers: solve a task from privileged state, emitting the backend's own actions.

Every controller outputs the normalised 7-d `pd_ee_delta_pose` action of the ManiSkill backend:
xyz delta (x 0.1 m), rotation delta about the base axes (x 0.1 rad), gripper (+1 open, -1 closed),
so a demonstration is exactly what a policy would send. A controller is a small state machine over
phases; each phase moves the tool centre point toward a target with a clipped proportional step and
advances when the target is reached (or after a fixed number of steps for the gripper). Phases are
keyed to geometry, not time, so what the next action should be is visible in the image.

Controllers register in `SCRIPTED_CONTROLLERS` under "backend/task"; one instance drives one env
and is `reset()` at the start of each episode.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from vla_rl.demos.privileged import PrivilegedState, wrap_angle
from vla_rl.registry import Registry

OPEN, CLOSED = 1.0, -1.0
POS_SCALE = 0.1
"""Metres per unit of the normalised xyz action (ManiSkill Panda `pos_lower/upper`)."""
ROT_SCALE = 0.1
"""Radians per unit of the normalised rotation action (ManiSkill Panda `rot_lower/upper`)."""


def move_action(state: PrivilegedState, target: np.ndarray, gripper: float, max_step: float = 1.0,
                gain: float = 1.0, yaw_target: float | None = None, yaw_period: float = np.pi / 2) -> np.ndarray:
    """One normalised action that moves the TCP toward `target` (base frame) and turns it toward
    `yaw_target` (modulo `yaw_period`, e.g. a cube's 4-fold symmetry); xyz clipped to +-max_step."""
    delta = gain * (np.asarray(target, dtype=np.float64) - state.tcp.p) / POS_SCALE
    xyz = np.clip(delta, -max_step, max_step)
    rot = np.zeros(3)
    if yaw_target is not None:
        # Measured on ManiSkill 3.0.1: a positive rotation action turns the downward-pointing tool
        # about its own axis, i.e. clockwise seen from above, so the heading error enters negated.
        rot[2] = -np.clip(wrap_angle(yaw_target - state.tcp.yaw, yaw_period) / ROT_SCALE, -1.0, 1.0)
    return np.concatenate([xyz, rot, [gripper]]).astype(np.float32)


def yaw_error(state: PrivilegedState, yaw_target: float, period: float = np.pi / 2) -> float:
    return abs(wrap_angle(yaw_target - state.tcp.yaw, period))


class ScriptedController(abc.ABC):
    """Drives one environment through one episode at a time."""

    def __init__(self) -> None:
        self.phase = 0
        self.phase_steps = 0

    def reset(self) -> None:
        """Start a new episode."""
        self.phase, self.phase_steps = 0, 0

    def advance(self) -> None:
        self.phase += 1
        self.phase_steps = 0

    def act(self, state: PrivilegedState) -> np.ndarray:
        """The (7,) float32 action for this step."""
        action = self.step(state)
        self.phase_steps += 1
        return action

    @abc.abstractmethod
    def step(self, state: PrivilegedState) -> np.ndarray:
        """Phase logic: return the action, calling `advance()` when a phase is done."""


SCRIPTED_CONTROLLERS: Registry[type[ScriptedController]] = Registry("scripted controller")


def make_controller(backend: str, task: str) -> ScriptedController:
    """A fresh controller for `backend/task` (KeyError listing the scripted tasks if there is none)."""
    return SCRIPTED_CONTROLLERS.get(f"{backend}/{task}")()


# ----------------------------------------------------------------------------------------------
# Pushing and pulling a cube along x with a closed gripper
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlideSpec:
    """Geometry of a slide: the side the TCP approaches from and how far the cube must travel."""

    direction: float
    """+1: push toward +x (PushCube); -1: pull toward -x (PullCube)."""
    standoff: float = 0.05
    """Distance from the cube centre to the TCP before sliding, along -direction."""
    hover: float = 0.06
    """TCP height while travelling to the start of the slide."""
    height: float = 0.02
    """TCP height while sliding (the cube centre's height)."""
    speed: float = 0.4
    """Largest normalised xyz step while sliding."""


class SlideCube(ScriptedController):
    """Hover behind the cube, lower the closed gripper, slide the cube onto the goal region."""

    spec = SlideSpec(direction=1.0)
    cube, goal = "cube", "goal_region"

    def step(self, state: PrivilegedState) -> np.ndarray:
        s, cube, goal = self.spec, state.objects[self.cube].p, state.objects[self.goal].p
        behind = cube + np.array([-s.direction * s.standoff, 0.0, 0.0])
        if self.phase == 0:  # travel above the start point
            target = np.array([behind[0], behind[1], s.hover])
            if np.linalg.norm(target - state.tcp.p) < 0.015:
                self.advance()
            return move_action(state, target, CLOSED)
        if self.phase == 1:  # lower beside the cube
            target = np.array([behind[0], behind[1], s.height])
            if abs(state.tcp.p[2] - s.height) < 0.01:
                self.advance()
            return move_action(state, target, CLOSED)
        # slide: keep the TCP on the line through the cube centre, aim the cube at the goal centre
        end_x = goal[0] - s.direction * s.standoff
        target = np.array([end_x, cube[1], s.height])
        return move_action(state, target, CLOSED, max_step=s.speed)


@SCRIPTED_CONTROLLERS.register("maniskill/PushCube-v1")
class PushCube(SlideCube):
    """PushCube-v1: push the cube +x onto the target."""

    spec = SlideSpec(direction=1.0)


@SCRIPTED_CONTROLLERS.register("maniskill/PullCube-v1")
class PullCube(SlideCube):
    """PullCube-v1: reach past the cube and pull it -x onto the target."""

    spec = SlideSpec(direction=-1.0)


# ----------------------------------------------------------------------------------------------
# Grasping: pick, carry, place
# ----------------------------------------------------------------------------------------------


class PickAndPlace(ScriptedController):
    """Align and descend on a cube, grasp it, carry it so that the cube (not the TCP) reaches a
    target; subclasses say where the target is and what happens there."""

    cube = "cube"
    hover = 0.07
    """Height above the cube centre from which the gripper descends."""
    close_steps = 4
    """Steps the gripper takes to close before lifting."""
    yaw_tolerance = 0.25
    """Heading error (rad) accepted before descending; the closing fingers square the cube up."""

    def place_target(self, state: PrivilegedState) -> np.ndarray:
        raise NotImplementedError

    def carry_action(self, state: PrivilegedState, cube_target: np.ndarray, max_step: float = 1.0) -> np.ndarray:
        """Move the TCP so that the held cube heads to `cube_target` (absorbs the grasp offset)."""
        offset = state.tcp.p - state.objects[self.cube].p
        return move_action(state, cube_target + offset, CLOSED, max_step=max_step)

    def grasp(self, state: PrivilegedState) -> np.ndarray | None:
        """Phases 0-2 (above, descend, close); None once the cube is held."""
        cube = state.objects[self.cube]
        yaw = cube.yaw
        if self.phase == 0:
            target = cube.p + np.array([0.0, 0.0, self.hover])
            if np.linalg.norm(target[:2] - state.tcp.p[:2]) < 0.01 and abs(target[2] - state.tcp.p[2]) < 0.03 \
                    and yaw_error(state, yaw) < self.yaw_tolerance:
                self.advance()
            return move_action(state, target, OPEN, yaw_target=yaw)
        if self.phase == 1:
            target = cube.p.copy()
            if np.linalg.norm(target - state.tcp.p) < 0.008:
                self.advance()
            return move_action(state, target, OPEN, max_step=0.6, yaw_target=yaw)
        if self.phase == 2:
            if self.phase_steps + 1 >= self.close_steps:
                self.advance()
            return move_action(state, cube.p, CLOSED, max_step=0.2)
        return None


@SCRIPTED_CONTROLLERS.register("maniskill/PickCube-v1")
class PickCube(PickAndPlace):
    """PickCube-v1: grasp the cube and hold it still at the goal."""

    def step(self, state: PrivilegedState) -> np.ndarray:
        action = self.grasp(state)
        if action is not None:
            return action
        goal = state.objects["goal_site"].p
        error = np.linalg.norm(goal - state.objects[self.cube].p)
        # slow down near the goal so the arm is still (success needs joint speeds < 0.2) when it arrives
        return self.carry_action(state, goal, max_step=1.0 if error > 0.05 else 0.3)


@SCRIPTED_CONTROLLERS.register("maniskill/StackCube-v1")
class StackCube(PickAndPlace):
    """StackCube-v1: grasp cube A, put it on cube B, let go and back off."""

    cube = "cubeA"
    size = 0.04

    def step(self, state: PrivilegedState) -> np.ndarray:
        action = self.grasp(state)
        if action is not None:
            return action
        b, a = state.objects["cubeB"].p, state.objects[self.cube].p
        above = b + np.array([0.0, 0.0, self.size + 0.03])
        if self.phase == 3:  # carry above B
            if np.linalg.norm(above - a) < 0.012:
                self.advance()
            return self.carry_action(state, above)
        if self.phase == 4:  # lower onto B
            on_top = b + np.array([0.0, 0.0, self.size + 0.002])
            if abs(a[2] - on_top[2]) < 0.004:
                self.advance()
            return self.carry_action(state, on_top, max_step=0.3)
        if self.phase == 5:  # release
            if self.phase_steps + 1 >= 3:
                self.advance()
            return move_action(state, state.tcp.p, OPEN)
        return move_action(state, state.tcp.p + np.array([0.0, 0.0, 0.05]), OPEN, max_step=0.5)  # back off


__all__ = ["SCRIPTED_CONTROLLERS", "ScriptedController", "make_controller", "move_action"]
