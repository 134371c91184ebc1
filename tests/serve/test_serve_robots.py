"""Robot adapter safety (bounds, translation cap, workspace, emergency stop) and the control loop
against a real server, on a small in-memory arm that integrates its actions (the base class is
under test; the simulator-backed robot is tested in test_serve_sim.py)."""

import numpy as np
import pytest

from vla_rl.robots import EmergencyStopped, RobotAdapter, SafetyLimits, control_loop, limit_action
from vla_rl.serve import PolicyClient

LIMITS = SafetyLimits(action_low=(-0.5,) * 6 + (-1.0,), action_high=(0.5,) * 6 + (1.0,), max_translation=0.6,
                      translation_scale=0.1, workspace_low=(-0.2, -0.2, 0.0), workspace_high=(0.2, 0.2, 0.3))


class PointArm(RobotAdapter):
    """An arm whose end effector moves `translation_scale` metres per action unit; records what it executed."""

    control_hz = 50.0
    action_dim = 7

    def __init__(self, limits, image=None):
        super().__init__(limits)
        self.pos = np.array([0.0, 0.0, 0.15])
        self.executed: list[np.ndarray] = []
        self.halts = 0
        self.image = np.zeros((32, 32, 3), np.uint8) if image is None else image

    def observe(self):
        return {"images": {"main": self.image}, "proprio": np.concatenate([self.pos, np.zeros(6)]).astype(np.float32)}

    def ee_position(self):
        return self.pos.copy()

    def _execute(self, action):
        self.executed.append(action.copy())
        self.pos = self.pos + self.limits.translation_scale * action[:3]
        return {}

    def _halt(self):
        self.halts += 1


def test_limit_action_bounds_and_translation_cap():
    out, hit = limit_action(np.array([2.0, 0, 0, -3, 0, 0, 5]), SafetyLimits(action_low=(-1,) * 7, action_high=(1,) * 7))
    np.testing.assert_array_equal(out, [1, 0, 0, -1, 0, 0, 1])
    assert hit == ["action_bounds"]
    out, hit = limit_action(np.array([0.3, 0.4, 0, 0, 0, 0, 0]), SafetyLimits(max_translation=0.25))
    np.testing.assert_allclose(out[:3], [0.15, 0.2, 0], rtol=1e-6)  # direction kept, norm 0.25
    assert hit == ["max_translation"]
    out, hit = limit_action(np.array([0.1, 0.1, 0, 0, 0, 0, 0]), SafetyLimits(max_translation=0.25))
    assert hit == [] and out[0] == np.float32(0.1)


def test_limit_action_workspace():
    limits = SafetyLimits(translation_scale=0.1, workspace_low=(0, 0, 0), workspace_high=(1, 1, 1))
    out, hit = limit_action(np.array([5.0, -5.0, 0.5, 0, 0, 0, 0]), limits, ee_position=np.array([0.95, 0.05, 0.5]))
    np.testing.assert_allclose(out[:3], [0.5, -0.5, 0.5], atol=1e-6)  # stops exactly at the x and y walls
    assert hit == ["workspace"]
    out, _ = limit_action(np.array([1.0, 0, -1.0, 0, 0, 0, 0]), limits, ee_position=np.array([1.5, 0.5, 0.5]))
    assert out[0] == 0 and out[2] == -1.0  # outside: no motion further out, motion back allowed
    out, _ = limit_action(np.array([-1.0, 0, 0, 0, 0, 0, 0]), limits, ee_position=np.array([1.5, 0.5, 0.5]))
    assert out[0] == -1.0
    with pytest.raises(ValueError, match="no end-effector position"):
        limit_action(np.zeros(7), limits)


def test_adapter_clips_every_action_and_keeps_the_arm_in_its_workspace():
    arm = PointArm(LIMITS)
    rng = np.random.default_rng(0)
    for _ in range(300):
        done = arm.act(rng.uniform(-3, 3, 7))
        assert np.all(done.executed[:6] >= -0.5) and np.all(done.executed[:6] <= 0.5)
        assert np.linalg.norm(done.executed[:3]) <= 0.6 + 1e-6
        assert np.all(arm.pos >= np.array(LIMITS.workspace_low) - 1e-6)
        assert np.all(arm.pos <= np.array(LIMITS.workspace_high) + 1e-6)
    assert len(arm.executed) == 300


def test_emergency_stop_and_non_finite_actions():
    arm = PointArm(LIMITS)
    arm.act(np.zeros(7))
    with pytest.raises(EmergencyStopped, match="non-finite"):
        arm.act(np.array([np.nan] + [0.0] * 6))
    assert arm.stopped and arm.halts == 1 and len(arm.executed) == 1
    with pytest.raises(EmergencyStopped, match="release_stop"):
        arm.act(np.zeros(7))
    arm.release_stop()
    arm.act(np.zeros(7))
    assert len(arm.executed) == 2
    with pytest.raises(EmergencyStopped, match=r"shape \(6,\)"):
        arm.act(np.zeros(6))


def test_inconsistent_limits_are_refused():
    with pytest.raises(ValueError, match="action_high"):
        SafetyLimits(action_low=(0.0,), action_high=())
    with pytest.raises(ValueError, match="workspace"):
        SafetyLimits(workspace_low=(0, 0, 0), workspace_high=(1, 1))


def test_control_loop_drives_the_arm_from_the_server(server, loaded):
    arm = PointArm(SafetyLimits(), image=np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    with PolicyClient(server.uri) as client:
        result = control_loop(arm, client, "pick up the red cube", max_steps=4, realtime=False)
    assert (result.steps, result.queries, result.stop_reason) == (4, 4, "")
    # the first executed action is the policy's greedy action for the first observation
    first = PointArm(SafetyLimits(), image=arm.image).observe()
    want = loaded.policy.act({"images": {"main": first["images"]["main"][None]}, "proprio": first["proprio"][None],
                              "instruction": ["pick up the red cube"]}, mode="greedy").actions[0, 0]
    np.testing.assert_array_equal(arm.executed[0], want)


def test_control_loop_stops_the_arm_when_the_server_refuses(server):
    arm = PointArm(SafetyLimits(), image=np.zeros((32, 32, 3), np.float32))
    with PolicyClient(server.uri) as client:
        result = control_loop(arm, client, "pick", max_steps=4, realtime=False)
    assert result.steps == 0 and arm.stopped and arm.halts == 1
    assert "policy query failed" in result.stop_reason and "dtype float32" in result.stop_reason
