"""The robot-side control loop: observe, query the policy server, execute the action chunk at the control rate.

Works with any `RobotAdapter` and any client with `infer(request) -> {"actions": (K, A), ...}`:
`vla_rl.serve.PolicyClient` or openpi-client's `WebsocketClientPolicy`. A failed query (server
error, lost connection) or an interrupt halts the robot through its emergency stop; the loop never
leaves an arm moving on stale actions.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from vla_rl.robots.base import EmergencyStopped, RobotAdapter
from vla_rl.serve.schema import ObservationSchema, request_from_obs

log = logging.getLogger("vla_rl.robots")


class PolicyQuery(Protocol):
    def infer(self, request: dict[str, Any]) -> dict[str, Any]: ...


@dataclass
class ControlResult:
    """Summary of one `control_loop` run."""

    steps: int = 0
    """Actions executed."""
    queries: int = 0
    """Policy requests answered."""
    seconds: float = 0.0
    success: bool = False
    """The robot reported task success (robots that know it, e.g. simulators)."""
    done: bool = False
    """The robot reported the episode over."""
    limited_steps: int = 0
    """Actions changed by the safety limits."""
    overruns: int = 0
    """Control ticks missed because observation + query + execution took longer than one period."""
    stop_reason: str = ""
    """Why the robot was emergency-stopped ("" when it was not)."""


def request_for(observation: dict[str, Any], instruction: str, schema: ObservationSchema) -> dict[str, Any]:
    """The request map for one robot observation (images by camera, proprio) and an instruction."""
    batched = {"images": {c: np.asarray(img)[None] for c, img in observation["images"].items()},
               "proprio": np.asarray(observation.get("proprio", np.zeros(0)), np.float32)[None],
               "instruction": [instruction]}
    return request_from_obs(batched, 0, schema)


def control_loop(robot: RobotAdapter, policy: PolicyQuery, instruction: str, max_steps: int,
                 schema: ObservationSchema | None = None, realtime: bool = True) -> ControlResult:
    """Run `robot` from `policy` for at most `max_steps` actions (or until it reports done).

    `schema` maps the observation to request keys (default: the schema the client got from the
    server's metadata, else the default schema). With `realtime`, actions are paced at
    `robot.control_hz`; a simulator may run with `realtime=False`.
    """
    if schema is None:
        schema = policy.schema() if hasattr(policy, "schema") else ObservationSchema()
    period = 1.0 / robot.control_hz
    result = ControlResult()
    start = next_tick = time.perf_counter()
    try:
        while result.steps < max_steps and not result.done:
            try:
                reply = policy.infer(request_for(robot.observe(), instruction, schema))
                chunk = np.asarray(reply["actions"], dtype=np.float32).reshape(-1, robot.action_dim)
            except Exception as exc:  # noqa: BLE001 - any failed query halts the arm
                robot.emergency_stop(f"policy query failed: {type(exc).__name__}: {exc}")
                break
            result.queries += 1
            for action in chunk[: max_steps - result.steps]:
                try:
                    executed = robot.act(action)
                except EmergencyStopped:
                    break
                result.steps += 1
                result.limited_steps += bool(executed.limits_hit)
                result.success |= bool(executed.info.get("success", False))
                result.done = bool(executed.info.get("done", False))
                if realtime:
                    next_tick += period
                    delay = next_tick - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    elif delay < -period:
                        result.overruns += 1
                        next_tick = time.perf_counter()
                if result.done or robot.stopped:
                    break
            if robot.stopped:
                break
    except BaseException:
        robot.emergency_stop("control loop interrupted")
        raise
    finally:
        result.seconds = time.perf_counter() - start
        result.stop_reason = robot.stop_reason
    if result.stop_reason:
        log.warning("robot stopped: %s", result.stop_reason)
    return result


__all__ = ["ControlResult", "PolicyQuery", "control_loop", "request_for"]
