"""Robot adapters: the interface a lab implements for its arm (`base.py`), the simulator as a robot
(`sim.py`), and the control loop that drives an adapter from a policy server (`control.py`)."""

from vla_rl.robots.base import EmergencyStopped, ExecutedAction, RobotAdapter, SafetyLimits, limit_action
from vla_rl.robots.control import ControlResult, control_loop, request_for
from vla_rl.robots.sim import SimRobot

__all__ = ["ControlResult", "EmergencyStopped", "ExecutedAction", "RobotAdapter", "SafetyLimits", "SimRobot",
           "control_loop", "limit_action", "request_for"]
