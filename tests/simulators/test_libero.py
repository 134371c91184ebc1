"""LIBERO backend on the real simulator: init states equal the benchmark's files, reset ids reproduce.

Marked `libero` and `slow`: each worker builds robosuite scenes (~15 s) and a task switch rebuilds
one (~5 s). Run with `pytest tests/simulators -m libero`.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from simulators import make_env
from vla_rl.config.env import EnvConfig

pytestmark = [pytest.mark.libero, pytest.mark.slow]

NUM_TASKS = 130
# (reset id) -> libero_130 task r % 130 from init state (r // 130) % 50: suites spatial, goal, 10, 90.
SAMPLE_IDS = [0, 130 * 7 + 25, 130 * 49 + 38, 130 * 13 + 97]


def _benchmark_file(suite: str, task_name: str) -> Path:
    """The benchmark's own init-state file of a task, found on disk without the backend's help."""
    root = Path(importlib.util.find_spec("libero").submodule_search_locations[0]) / "libero" / "init_files"
    return root / suite / f"{task_name}.pruned_init.npz"


@pytest.fixture(scope="module")
def env():
    cfg = EnvConfig(
        backend="libero", task="libero_130", num_envs=2, image_size=64, cameras=("main", "wrist"), settle_steps=0
    )
    e = make_env(cfg)
    yield e
    e.close()


def test_spec_follows_the_protocol(env):
    s = env.spec
    assert (s.action_dim, s.proprio_dim, s.control_hz, s.max_episode_steps) == (7, 8, 20.0, 520)
    assert s.gripper_convention == "close_positive" and s.extras["num_tasks"] == NUM_TASKS


def test_init_states_equal_the_benchmark_files(env):
    from simulators.libero_env import list_tasks

    tasks = list_tasks("libero_130")
    for a, b in zip(SAMPLE_IDS[::2], SAMPLE_IDS[1::2]):
        obs = env.reset([a, b])
        for env_id, rid in enumerate((a, b)):
            task, state = tasks[rid % NUM_TASKS], (rid // NUM_TASKS) % 50
            expected = np.load(_benchmark_file(task.suite, task.name))["states"][state]
            got = env.get_state([env_id])[0]["sim"]["sim"]
            np.testing.assert_array_equal(got, expected)
            assert obs["instruction"][env_id] == task.language


def test_a_reset_puts_the_simulator_at_the_benchmark_init_qpos(env):
    """After `set_init_state` (no settle steps here) the simulator's live qpos is the init state's
    qpos, as LIBERO's own `get_task_init_states` loads it (the reference evaluation's path)."""
    from libero.libero import benchmark

    suite = benchmark.get_benchmark_dict()["libero_goal"]()
    task, state = 4, 17
    rid = 130 * state + 20 + task  # libero_130 lists spatial, object (10 tasks each), then goal
    env.reset([rid, 0])
    qpos = env.get_state([0])[0]["sim"]["qpos"]
    expected = suite.get_task_init_states(task)[state]
    np.testing.assert_array_equal(qpos, expected[1:1 + len(qpos)])  # flattened state: time, qpos, qvel


def test_equal_reset_ids_give_identical_first_observations(env):
    obs = env.reset([5, 5])
    for cam in ("main", "wrist"):
        assert obs["images"][cam].shape == (2, 64, 64, 3)
        np.testing.assert_array_equal(obs["images"][cam][0], obs["images"][cam][1])
    np.testing.assert_array_equal(obs["proprio"][0], obs["proprio"][1])
    again = env.reset([5], env_ids=[1])
    np.testing.assert_array_equal(again["images"]["main"][1], obs["images"]["main"][0])


def test_steps_run_and_stay_unsuccessful_without_motion(env):
    env.reset([1, 2])
    noop = np.tile(np.array([0, 0, 0, 0, 0, 0, -1], np.float32), (2, 1))
    res = env.chunk_step(np.repeat(noop[:, None], 3, axis=1))
    assert res.info["executed"].all() and not res.terminated.any() and np.all(res.reward == 0)
    assert res.obs["proprio"].shape == (2, 8)


def test_openvla_image_protocol_matches_the_reference_on_a_render():
    """The same init state rendered raw at 256 px and through `image_protocol=openvla`: the env's images
    are `openvla_image` of the raw render exactly, and close to the 8-bit Pillow reference pipeline."""
    from simulators.image_protocol import openvla_image
    from image_reference import close_to_reference, reference_openvla

    frames = {}
    for protocol, size in (("raw", 256), ("openvla", 224)):
        cfg = EnvConfig(backend="libero", task="libero_spatial/0", num_envs=1, image_size=size,
                        cameras=("main", "wrist"), image_protocol=protocol)
        with make_env(cfg) as e:
            assert e.spec.extras["image_protocol"] == protocol and e.spec.extras["render_size"] == 256
            frames[protocol] = {c: im[0] for c, im in e.reset([3])["images"].items()}
    for cam in ("main", "wrist"):
        raw, ours = frames["raw"][cam], frames["openvla"][cam]
        assert ours.shape == (224, 224, 3)
        np.testing.assert_array_equal(ours, openvla_image(raw, 224))
        assert close_to_reference(ours, reference_openvla(raw))
