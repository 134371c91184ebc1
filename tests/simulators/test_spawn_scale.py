"""`env.spawn_scale`: a smaller spawn region for ManiSkill PushCube/PullCube, goal kept at its offset.

The real-simulator test builds ManiSkill PushCube envs in this process (full and shrunk region).
"""

import numpy as np
import pytest

from vla_rl.config.core import ConfigError
from vla_rl.config.env import EnvConfig


def test_spawn_scale_is_validated():
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ConfigError, match="spawn_scale"):
            EnvConfig(spawn_scale=bad)


def test_tasks_without_a_spawn_group_and_libero_refuse_a_smaller_region():
    from simulators.maniskill import ManiSkillVectorEnv
    from vla_rl.config.core import from_dict

    with pytest.raises(ConfigError, match="not supported by PickCube-v1.*PushCube-v1"):
        ManiSkillVectorEnv.from_config(EnvConfig(task="PickCube-v1", spawn_scale=0.5))
    with pytest.raises(ConfigError, match=r"env.spawn_scale is read only with env.backend in \['maniskill', 'maniskill_gpu'\]"):
        from_dict(EnvConfig, {"backend": "libero", "task": "libero_spatial/0", "spawn_scale": 0.5}, prefix="env")


def _cube_and_goal(env) -> tuple[np.ndarray, np.ndarray]:
    return env._env.obj.pose.p[0].numpy().copy(), env._env.goal_region.pose.p[0].numpy().copy()


@pytest.fixture(scope="module")
def full_and_shrunk():
    from simulators.maniskill_env import ManiSkillSingleEnv

    envs = [ManiSkillSingleEnv("PushCube-v1", 64, ("main",), "sparse", 20, mesh_detail=0.05, spawn_scale=s)
            for s in (1.0, 0.25)]
    yield envs
    for e in envs:
        e.close()


def test_the_cube_offset_shrinks_and_the_goal_keeps_its_place_in_front_of_it(full_and_shrunk):
    full, shrunk = full_and_shrunk
    assert shrunk.info().extras["spawn_scale"] == 0.25
    for reset_id in (0, 1, 2, 3):
        full.reset(reset_id)
        obs = shrunk.reset(reset_id)
        cube_full, goal_full = _cube_and_goal(full)
        cube, goal = _cube_and_goal(shrunk)
        np.testing.assert_allclose(cube[:2], 0.25 * cube_full[:2], atol=1e-6)
        np.testing.assert_allclose(cube[2], cube_full[2], atol=1e-6)
        np.testing.assert_allclose(goal - cube, goal_full - cube_full, atol=1e-6)
        assert np.abs(cube[:2]).max() <= 0.025 + 1e-6
    # the observation is rendered after the move: the same reset id renders differently than the full region
    assert not np.array_equal(obs["images"]["main"], full.reset(3)["images"]["main"])


def test_a_shrunk_reset_is_deterministic_and_the_cube_stays_put_until_pushed(full_and_shrunk):
    _, shrunk = full_and_shrunk
    first = shrunk.reset(7)["images"]["main"]
    cube, _ = _cube_and_goal(shrunk)
    for _ in range(3):
        shrunk.step(np.zeros(7, dtype=np.float32))
    np.testing.assert_allclose(_cube_and_goal(shrunk)[0], cube, atol=1e-4)
    np.testing.assert_array_equal(shrunk.reset(7)["images"]["main"], first)
