"""Privileged simulator state for scripted controllers: object and gripper poses in the robot base frame.

A policy sees only images, proprio and the instruction; a scripted demonstrator may read the true
poses. They come from the backend's public state snapshot (`VectorEnv.get_state`, cheap), turned
into a `PrivilegedState` by a reader registered per backend, so no simulator code changes.

ManiSkill3 (`maniskill`): the snapshot holds every actor's world pose (p, q wxyz, velocities; 13
floats) by actor name and each articulation's root pose first; the TCP pose comes from the
observation's proprio (base frame position + robosuite axis-angle), the fingers from its last two
entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from vla_rl.registry import Registry


@dataclass(frozen=True)
class Pose:
    """A rigid pose in the robot base frame."""

    p: np.ndarray
    """(3,) position, metres."""
    R: np.ndarray
    """(3, 3) rotation matrix (columns: the body's axes in the base frame)."""

    @property
    def yaw(self) -> float:
        """Heading of the body's x axis about the base z axis, radians."""
        return float(np.arctan2(self.R[1, 0], self.R[0, 0]))


@dataclass
class PrivilegedState:
    """What a scripted controller may read about one environment at one step."""

    tcp: Pose
    """Tool centre point (between the fingertips)."""
    fingers: np.ndarray
    """(2,) finger joint positions (0.04 each when fully open on the Panda)."""
    objects: dict[str, Pose] = field(default_factory=dict)
    """Task objects by the simulator's actor name (e.g. "cube", "goal_region")."""

    @property
    def gripper_width(self) -> float:
        return float(np.sum(self.fingers))


# ----------------------------------------------------------------------------------------------
# Pure rotation helpers
# ----------------------------------------------------------------------------------------------


def quat_wxyz_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrix of a (w, x, y, z) quaternion (normalised first)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def axis_angle_to_matrix(v: np.ndarray) -> np.ndarray:
    """Rotation matrix of an axis-angle vector (Rodrigues' formula)."""
    v = np.asarray(v, dtype=np.float64)
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3)
    k = v / angle
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


def wrap_angle(a: float, period: float = 2 * np.pi) -> float:
    """`a` wrapped into [-period/2, period/2)."""
    return float((a + period / 2) % period - period / 2)


# ----------------------------------------------------------------------------------------------
# Readers per backend
# ----------------------------------------------------------------------------------------------

PrivilegedReader = Callable[[dict[str, Any], np.ndarray], PrivilegedState]
"""(one env's simulator snapshot, that env's proprio) -> PrivilegedState."""

PRIVILEGED_READERS: Registry[PrivilegedReader] = Registry("privileged-state reader")


@PRIVILEGED_READERS.register("maniskill")
def maniskill_privileged(sim: dict[str, Any], proprio: np.ndarray) -> PrivilegedState:
    """ManiSkill3 snapshot (`get_state_dict` as numpy) + 8-d proprio -> base-frame poses."""
    articulations = sim.get("articulations", {})
    if len(articulations) != 1:
        raise ValueError(f"expected one robot articulation in the ManiSkill state, found {sorted(articulations)}")
    root = np.asarray(next(iter(articulations.values())), dtype=np.float64).reshape(-1)
    base_p, base_R = root[:3], quat_wxyz_to_matrix(root[3:7])

    def to_base(raw: np.ndarray) -> Pose:
        raw = np.asarray(raw, dtype=np.float64).reshape(-1)
        return Pose(p=base_R.T @ (raw[:3] - base_p), R=base_R.T @ quat_wxyz_to_matrix(raw[3:7]))

    objects = {name: to_base(raw) for name, raw in sim.get("actors", {}).items()}
    proprio = np.asarray(proprio, dtype=np.float64)
    tcp = Pose(p=proprio[:3].copy(), R=axis_angle_to_matrix(proprio[3:6]))
    return PrivilegedState(tcp=tcp, fingers=proprio[6:8].copy(), objects=objects)


def read_privileged(env: Any, obs: dict[str, Any]) -> list[PrivilegedState]:
    """The privileged state of every environment of `env` (a `SubprocVectorEnv`) at observation `obs`."""
    reader = PRIVILEGED_READERS.get(env.spec.backend)
    snapshots = env.get_state()
    return [reader(s["sim"], obs["proprio"][i]) for i, s in enumerate(snapshots)]


__all__ = ["PRIVILEGED_READERS", "Pose", "PrivilegedState", "axis_angle_to_matrix", "maniskill_privileged",
           "quat_wxyz_to_matrix", "read_privileged", "wrap_angle"]
