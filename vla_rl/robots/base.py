"""The robot adapter interface: what a lab implements to run a served policy on its arm.

A `RobotAdapter` is one arm. Subclasses implement four hooks:
    observe()      capture one observation now: {"images": {camera: uint8 (H, W, 3)}, "proprio": float32 (P,)}
    _execute(a)    send one action (A,) to the arm; return a dict (may be empty; "done" ends the episode,
                   "success" reports task success where the robot knows it)
    _halt()        stop all motion immediately and hold (called by the emergency stop; must be idempotent)
    ee_position()  current end-effector position (3,) in the frame of the workspace bounds, or None
and declare `control_hz` and `action_dim`. The base class owns safety: every action goes through
`limit_action` (per-dimension bounds, a cap on the translation step, workspace bounds on the next
end-effector position) before `_execute`; a non-finite action or `emergency_stop()` halts the arm,
and no action reaches it again until `release_stop()`.

`vla_rl.robots.sim.SimRobot` is the first implementation; `vla_rl.robots.control.control_loop` drives any
adapter from a policy server at its control rate.
"""

from __future__ import annotations

import abc
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vla_rl.config.core import check


@dataclass
class SafetyLimits:
    """Limits every action passes through before it reaches the arm (empty tuple / None: no limit)."""

    action_low: tuple[float, ...] = ()
    """Per-dimension lower bound of an action (length action_dim)."""
    action_high: tuple[float, ...] = ()
    """Per-dimension upper bound of an action (length action_dim)."""
    translation_dims: tuple[int, ...] = (0, 1, 2)
    """Action dimensions that move the end effector in x, y, z."""
    max_translation: float | None = None
    """Largest norm of the translation part of one action, in action units (scaled down, direction kept)."""
    translation_scale: float = 1.0
    """Metres the end effector moves per action unit along a translation dim (for the workspace check)."""
    workspace_low: tuple[float, ...] = ()
    """Lowest allowed end-effector position (x, y, z), metres."""
    workspace_high: tuple[float, ...] = ()
    """Highest allowed end-effector position (x, y, z), metres."""

    def __post_init__(self) -> None:
        check(len(self.action_low) == len(self.action_high),
              f"safety action_low has {len(self.action_low)} values but action_high {len(self.action_high)}; give both or neither")
        check(all(lo <= hi for lo, hi in zip(self.action_low, self.action_high)),
              f"safety action_low {self.action_low} must be <= action_high {self.action_high} in every dimension")
        check(len(self.translation_dims) == 3, f"safety translation_dims={self.translation_dims} must name 3 dims (x, y, z)")
        check(self.max_translation is None or self.max_translation > 0,
              f"safety max_translation={self.max_translation} must be > 0 or null")
        check(self.translation_scale > 0, f"safety translation_scale={self.translation_scale} must be > 0")
        check(len(self.workspace_low) in (0, 3) and len(self.workspace_low) == len(self.workspace_high),
              "safety workspace_low and workspace_high must both be (x, y, z) or both empty")
        check(all(lo <= hi for lo, hi in zip(self.workspace_low, self.workspace_high)),
              f"safety workspace_low {self.workspace_low} must be <= workspace_high {self.workspace_high}")

    @property
    def has_workspace(self) -> bool:
        return len(self.workspace_low) == 3


def limit_action(action: np.ndarray, limits: SafetyLimits, ee_position: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """(the action made safe, names of the limits that changed it). Pure; `action` is (A,) and finite.

    Order: per-dimension bounds, translation norm cap, then each translation dim is clipped so the
    predicted next position `ee_position + translation_scale * action[dim]` stays inside the workspace.
    """
    out = np.array(action, dtype=np.float32, copy=True)
    hit: list[str] = []
    if limits.action_low:
        low, high = np.asarray(limits.action_low, np.float32), np.asarray(limits.action_high, np.float32)
        if low.shape != out.shape:
            raise ValueError(f"safety bounds have {low.size} dims but the action has {out.size}")
        clipped = np.clip(out, low, high)
        if not np.array_equal(clipped, out):
            hit.append("action_bounds")
        out = clipped
    dims = list(limits.translation_dims)
    if limits.max_translation is not None:
        norm = float(np.linalg.norm(out[dims]))
        if norm > limits.max_translation:
            out[dims] *= limits.max_translation / norm
            hit.append("max_translation")
    if limits.has_workspace:
        if ee_position is None:
            raise ValueError("workspace bounds are set but the robot reports no end-effector position")
        pos = np.asarray(ee_position, np.float64)
        low = (np.asarray(limits.workspace_low) - pos) / limits.translation_scale
        high = (np.asarray(limits.workspace_high) - pos) / limits.translation_scale
        # already outside: allow only motion back towards the workspace
        low, high = np.minimum(low, 0.0), np.maximum(high, 0.0)
        moved = np.clip(out[dims], low, high).astype(np.float32)
        if not np.array_equal(moved, out[dims]):
            hit.append("workspace")
        out[dims] = moved
    return out, hit


class EmergencyStopped(RuntimeError):
    """An action was refused because the robot is emergency-stopped."""


@dataclass
class ExecutedAction:
    """What `RobotAdapter.act` did with one action."""

    requested: np.ndarray
    executed: np.ndarray
    limits_hit: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


class RobotAdapter(abc.ABC):
    """One arm: observation capture, safe action execution, emergency stop (see the module docstring)."""

    control_hz: float
    """Actions per second the arm expects."""
    action_dim: int
    """Length of one action."""

    def __init__(self, limits: SafetyLimits | None = None) -> None:
        self.limits = limits or SafetyLimits()
        self._stopped = threading.Event()
        self.stop_reason = ""

    # ------------------------------------------------------------------ hooks a lab implements
    @abc.abstractmethod
    def observe(self) -> dict[str, Any]:
        """One observation now: {"images": {camera: uint8 (H, W, 3)}, "proprio": float32 (P,)}."""

    @abc.abstractmethod
    def _execute(self, action: np.ndarray) -> dict[str, Any]:
        """Send one already-limited action (A,) to the arm; returns info ("done", "success" when known)."""

    @abc.abstractmethod
    def _halt(self) -> None:
        """Stop all motion now and hold position. Idempotent; may be called from another thread."""

    def ee_position(self) -> np.ndarray | None:
        """End-effector position (3,) in the workspace frame; None when unknown (then no workspace limits)."""
        return None

    def reset(self) -> None:
        """Bring the robot to its start state (optional; a real arm may leave this to the operator)."""

    def close(self) -> None:
        """Release hardware or processes."""

    # ------------------------------------------------------------------ safety, owned by the base class
    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def emergency_stop(self, reason: str = "emergency stop") -> None:
        """Halt the arm and refuse every action until `release_stop()`. Safe to call from any thread."""
        self.stop_reason = reason
        self._stopped.set()
        self._halt()

    def release_stop(self) -> None:
        """Accept actions again (after an operator has checked the scene)."""
        self._stopped.clear()
        self.stop_reason = ""

    def act(self, action: np.ndarray) -> ExecutedAction:
        """Limit `action` and execute it. A non-finite action triggers the emergency stop."""
        if self.stopped:
            raise EmergencyStopped(f"robot is stopped ({self.stop_reason}); call release_stop() after checking the scene")
        requested = np.asarray(action, dtype=np.float32).reshape(-1)
        if requested.shape != (self.action_dim,):
            self.emergency_stop(f"action of shape {np.shape(action)}, expected ({self.action_dim},)")
            raise EmergencyStopped(self.stop_reason)
        if not np.isfinite(requested).all():
            self.emergency_stop(f"non-finite action {requested.tolist()}")
            raise EmergencyStopped(self.stop_reason)
        executed, hit = limit_action(requested, self.limits, self.ee_position() if self.limits.has_workspace else None)
        info = self._execute(executed)
        return ExecutedAction(requested, executed, hit, dict(info or {}))

    def __enter__(self) -> "RobotAdapter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["EmergencyStopped", "ExecutedAction", "RobotAdapter", "SafetyLimits", "limit_action"]
