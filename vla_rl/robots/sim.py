"""A simulator behind the robot adapter interface: the first `RobotAdapter`, and the template for a real arm.

Wraps a `simulators.base.VectorEnv` with one environment (N=1) and auto-reset off, so a served
policy can be driven through exactly the code path a real arm uses (`control_loop`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vla_rl.robots.base import RobotAdapter, SafetyLimits


class SimRobot(RobotAdapter):
    """Environment 0 of a one-environment `VectorEnv` as a robot.

    `ee_dims` names the proprio entries holding the end-effector position (ManiSkill and LIBERO:
    (0, 1, 2), the TCP position in the robot base frame); needed only for workspace limits.
    """

    def __init__(self, env: Any, limits: SafetyLimits | None = None, reset_id: int = 0,
                 ee_dims: tuple[int, int, int] | None = (0, 1, 2)) -> None:
        if env.num_envs != 1:
            raise ValueError(f"SimRobot drives one environment; build the env with num_envs=1 (got {env.num_envs})")
        super().__init__(limits)
        self.env, self.reset_id, self.ee_dims = env, reset_id, ee_dims
        self.env.auto_reset = False
        self.control_hz = float(env.spec.control_hz)
        self.action_dim = int(env.spec.action_dim)
        self.instruction = ""
        self._obs: dict[str, Any] | None = None
        self.success = False
        self.done = False
        self.halted = False
        """True after the emergency stop halted the simulated arm (it ignores actions from then on)."""

    def reset(self, reset_id: int | None = None) -> None:
        """Start a new episode from `reset_id` (default: the one given at construction)."""
        if reset_id is not None:
            self.reset_id = reset_id
        self._obs = self.env.reset(reset_ids=[self.reset_id])
        self.instruction = str(self._obs["instruction"][0])
        self.success = self.done = self.halted = False

    def observe(self) -> dict[str, Any]:
        if self._obs is None:
            self.reset()
        assert self._obs is not None
        return {"images": {cam: frames[0] for cam, frames in self._obs["images"].items()},
                "proprio": np.asarray(self._obs["proprio"][0], dtype=np.float32),
                "instruction": self.instruction}

    def ee_position(self) -> np.ndarray | None:
        if self.ee_dims is None:
            return None
        return np.asarray(self.observe()["proprio"][list(self.ee_dims)], dtype=np.float64)

    def _execute(self, action: np.ndarray) -> dict[str, Any]:
        if self.halted or self.done:
            return {"done": self.done, "success": self.success}
        step = self.env.step(np.asarray(action, np.float32)[None])
        self._obs = step.obs
        self.success |= bool(np.asarray(step.info["success"])[0])
        self.done = bool(np.asarray(step.terminated)[0] or np.asarray(step.truncated)[0])
        return {"done": self.done, "success": self.success, "reward": float(np.asarray(step.reward)[0])}

    def _halt(self) -> None:
        self.halted = True  # a simulated arm stops by ignoring further motion commands

    def close(self) -> None:
        self.env.close()


__all__ = ["SimRobot"]
