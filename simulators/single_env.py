"""One environment inside a worker process: the small interface each backend implements.

`SubprocVectorEnv` (the parent side) owns episode bookkeeping, the reset cursor, auto-reset and
worker restarts; a backend only writes a `SingleEnv` subclass that builds one simulator, resets it
to a reset id, steps one action and renders one observation. It runs in a spawned subprocess, so
its constructor is where the heavy simulator import happens.

A single-env observation is a dict: "images" {camera: uint8 (H, W, 3)}, "proprio" float32 (P,),
"instruction" str.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SingleObs = dict[str, Any]


@dataclass
class StepOutcome:
    """What one `SingleEnv.step` produced."""

    obs: SingleObs
    reward: float
    terminated: bool
    """The task ended the episode (success, or a failure the task defines)."""
    success: bool
    """The task's success flag at this step."""


@dataclass
class SingleEnvInfo:
    """Facts a worker reports about its env when it is ready (the parent builds `EnvSpec` from them)."""

    action_dim: int
    control_hz: float
    max_episode_steps: int
    proprio_dim: int
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()
    gripper_convention: str = "close_positive"
    extras: dict[str, Any] = field(default_factory=dict)


class SingleEnv(abc.ABC):
    """One simulator instance; lives in a worker process and never sees other environments."""

    @abc.abstractmethod
    def info(self) -> SingleEnvInfo:
        """Static facts about this env (action space, control rate, default episode limit)."""

    @abc.abstractmethod
    def reset(self, reset_id: int) -> SingleObs:
        """Start the episode named by `reset_id`; equal ids must give identical observations."""

    @abc.abstractmethod
    def step(self, action: np.ndarray) -> StepOutcome:
        """Apply one action (A,)."""

    def step_unobserved(self, action: np.ndarray) -> StepOutcome:
        """Apply one action whose observation nobody reads (inside a chunk). A backend may skip rendering and
        return `obs=None`; `observe()` then gives the observation there. Default: `step`."""
        return self.step(action)

    def observe(self) -> SingleObs:
        """The observation at the current state, after a `step_unobserved` that returned none."""
        raise NotImplementedError(f"{type(self).__name__} returns observations from every step")

    def episode_max_steps(self) -> int:
        """Step limit of the episode that the last `reset` started (per-task limits override this)."""
        return self.info().max_episode_steps

    def get_state(self) -> Any:
        """A picklable snapshot of the simulator state (for `set_state`)."""
        raise NotImplementedError(f"{type(self).__name__} does not support get_state")

    def set_state(self, state: Any) -> SingleObs:
        """Restore a snapshot taken by `get_state` and return the observation there."""
        raise NotImplementedError(f"{type(self).__name__} does not support set_state")

    def close(self) -> None:
        """Release the simulator."""
