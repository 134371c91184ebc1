"""A served checkpoint driven by a real simulator (ManiSkill3 PickCube, CPU): remote evaluation equals
in-process evaluation, and the simulator behind the robot adapter follows the control loop.

Slow: building the environments compiles shaders (~20-40 s on 2 cores)."""

import numpy as np
import pytest

from vla_rl.eval.episodes import evaluate_policy
from vla_rl.robots import SafetyLimits, SimRobot, control_loop
from vla_rl.serve import PolicyClient, evaluate_remote

pytestmark = pytest.mark.slow

STEPS = 5


def _env(num_envs: int):
    from simulators import make_env
    from vla_rl.config.env import EnvConfig

    return make_env(EnvConfig(task="PickCube-v1", num_envs=num_envs, num_workers=num_envs, image_size=32,
                              cameras=("main",), reward_mode="dense", max_episode_steps=STEPS, auto_reset=False))


def test_remote_evaluation_equals_in_process(server, loaded):
    env = _env(2)
    try:
        ids = [0, 1, 2]  # two rounds; the second leaves one environment spare
        local = evaluate_policy(env, loaded.policy, ids, mode="greedy", progress=False)
        remote = evaluate_remote(env, server.uri, ids)
    finally:
        env.close()
    assert remote.reset_ids == local.reset_ids == ids
    assert remote.successes == local.successes
    assert remote.lengths == local.lengths == [STEPS] * 3
    assert remote.returns == local.returns  # dense reward: any differing action would show here
    assert remote.success_rate == local.success_rate
    assert len(set(local.returns)) == 3


def test_sim_robot_follows_the_control_loop_and_its_limits(server, loaded):
    env = _env(1)
    try:
        # in-process reference: the same episode stepped directly
        obs = env.reset(reset_ids=[4])
        for _ in range(STEPS):
            obs = env.step(loaded.policy.act(obs, mode="greedy").actions[:, 0]).obs
        reference = obs["proprio"][0].copy()

        robot = SimRobot(env, reset_id=4)
        robot.reset()
        with PolicyClient(server.uri) as client:
            result = control_loop(robot, client, robot.instruction, max_steps=STEPS + 3, realtime=False)
        assert result.done and result.steps == STEPS and result.stop_reason == ""
        np.testing.assert_array_equal(robot.observe()["proprio"], reference)

        # safety limits clip what reaches the simulator
        robot.limits = SafetyLimits(action_low=(-0.1,) * 7, action_high=(0.1,) * 7)
        robot.reset()
        done = robot.act(np.array([1.0, -1.0, 0.05, 0, 0, 0, 1.0]))
        np.testing.assert_allclose(done.executed, [0.1, -0.1, 0.05, 0, 0, 0, 0.1], atol=1e-7)
        assert done.limits_hit == ["action_bounds"]
        z = robot.ee_position()[2]
        robot.limits = SafetyLimits(translation_scale=0.1, workspace_low=(-10, -10, -10), workspace_high=(10, 10, z))
        assert robot.act(np.array([0, 0, 1.0, 0, 0, 0, 0])).executed[2] == pytest.approx(0, abs=1e-3)
        robot.emergency_stop("test")
        before = robot.observe()["proprio"].copy()
        with pytest.raises(Exception, match="stopped"):
            robot.act(np.zeros(7))
        np.testing.assert_array_equal(robot.observe()["proprio"], before)
    finally:
        env.close()
