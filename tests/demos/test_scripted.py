"""Scripted controllers solve their tasks on the real simulator, in the backend's own action space."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.registry import make_env
from vla_rl.config.env import EnvConfig
from vla_rl.demos.generate import generate_demos
from vla_rl.demos.privileged import axis_angle_to_matrix, quat_wxyz_to_matrix, wrap_angle
from vla_rl.demos.scripted import SCRIPTED_CONTROLLERS


def _solve(task: str, seeds: int, max_steps: int | None = None):
    cfg = EnvConfig(task=task, num_envs=1, image_size=32, auto_reset=False, max_episode_steps=max_steps)
    with make_env(cfg) as env:
        episodes, stats = generate_demos(env, seeds, first_reset_id=0, max_attempts=seeds, progress=False)
    assert stats.successes == stats.attempts == seeds, stats
    for e in episodes:
        assert e.succeeded and np.all(np.abs(e.actions) <= 1.0) and e.actions.shape[1] == 7
    return episodes


def test_pick_cube_controller_succeeds_on_every_seed():
    episodes = _solve("PickCube-v1", 3)
    for e in episodes:  # opens, then closes on the cube and keeps it closed
        assert e.actions[0, 6] == 1.0 and e.actions[-1, 6] == -1.0


def test_push_cube_demos_came_from_every_attempt(push_demos):
    from vla_rl.demos.format import load_demos

    demos = load_demos(push_demos)
    assert demos.meta["attempts"] == len(demos) == 4 and demos.meta["failed_reset_ids"] == []


@pytest.mark.slow
@pytest.mark.parametrize("task", ["StackCube-v1", "PullCube-v1", "PushCube-v1"])
def test_other_controllers_succeed(task):
    _solve(task, 3)


def test_registered_tasks():
    assert {"maniskill/PushCube-v1", "maniskill/PullCube-v1", "maniskill/PickCube-v1",
            "maniskill/StackCube-v1"} <= set(SCRIPTED_CONTROLLERS.names())


def test_rotation_helpers_agree():
    angle = 0.7
    q = np.array([np.cos(angle / 2), 0.0, 0.0, np.sin(angle / 2)])  # yaw 0.7 about z
    np.testing.assert_allclose(quat_wxyz_to_matrix(q), axis_angle_to_matrix(np.array([0.0, 0.0, angle])), atol=1e-12)
    assert wrap_angle(np.pi / 2 + 0.1, np.pi / 2) == pytest.approx(0.1)
    assert wrap_angle(-np.pi / 4 - 0.1, np.pi / 2) == pytest.approx(np.pi / 4 - 0.1)
