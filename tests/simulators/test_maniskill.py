"""ManiSkill3 backend on real simulators: reset ids, chunking, auto-reset, fixed length, recovery.

One module-scoped env (2 envs in 2 worker processes, 64 px main + wrist cameras, 6-step episodes,
dense reward) is shared by the tests; building it compiles shaders (~10-30 s on 2 cores).
"""

import os
import signal

import numpy as np
import pytest

from simulators import make_env
from vla_rl.config.env import EnvConfig
from random_actions import random_actions

MAX_STEPS = 6


@pytest.fixture(scope="module")
def env():
    cfg = EnvConfig(
        task="PickCube-v1",
        num_envs=2,
        num_workers=2,
        image_size=64,
        cameras=("main", "wrist"),
        reward_mode="dense",
        max_episode_steps=MAX_STEPS,
        step_timeout_s=30.0,
    )
    e = make_env(cfg)
    yield e
    e.close()


def test_spec_and_observation_layout(env):
    s = env.spec
    assert (s.backend, s.task, s.action_dim, s.proprio_dim, s.max_episode_steps) == ("maniskill", "PickCube-v1", 7, 8, 6)
    assert s.cameras == ("main", "wrist") and s.image_size == (64, 64) and s.control_hz == 20.0
    obs = env.reset([0, 1])
    for cam in ("main", "wrist"):
        assert obs["images"][cam].shape == (2, 64, 64, 3) and obs["images"][cam].dtype == np.uint8
    assert obs["proprio"].shape == (2, 8) and obs["proprio"].dtype == np.float32
    assert obs["instruction"] == ["pick up the red cube and move it to the green goal"] * 2
    # fingers start open (0.04 m each) on the Panda
    np.testing.assert_allclose(obs["proprio"][:, 6:], 0.04, atol=1e-3)


def test_equal_reset_ids_give_identical_first_observations(env):
    obs = env.reset([5, 5])
    for cam in ("main", "wrist"):
        np.testing.assert_array_equal(obs["images"][cam][0], obs["images"][cam][1])
    np.testing.assert_array_equal(obs["proprio"][0], obs["proprio"][1])
    other = env.reset([6], env_ids=[1])
    assert not np.array_equal(other["images"]["main"][0], other["images"]["main"][1])
    again = env.reset([5], env_ids=[1])
    np.testing.assert_array_equal(again["images"]["main"][1], obs["images"]["main"][0])


def test_reset_without_ids_draws_from_the_cursor(env):
    env.set_reset_cursor(100)
    env.reset()
    assert env.get_reset_cursor() == 102
    res = env.step(np.zeros((2, 7), np.float32))
    np.testing.assert_array_equal(res.info["reset_id"], [100, 101])


def test_chunk_step_equals_stepping_one_action_at_a_time(env):
    acts = random_actions(0, (4, 7))
    env.reset([7, 7])
    chunk = env.chunk_step(np.stack([acts, acts]))
    assert chunk.reward.shape == (2, 4) and chunk.terminated.shape == (2, 4)
    assert chunk.info["executed"].all()
    env.reset([7, 7])
    singles = [env.step(np.stack([a, a])) for a in acts]
    np.testing.assert_allclose(chunk.reward, np.stack([s.reward for s in singles], axis=1), rtol=1e-6)
    for cam in ("main", "wrist"):
        np.testing.assert_array_equal(chunk.obs["images"][cam], singles[-1].obs["images"][cam])
    np.testing.assert_allclose(chunk.obs["proprio"], singles[-1].obs["proprio"], atol=1e-6)
    # both workers ran the same actions from the same seed
    np.testing.assert_array_equal(chunk.obs["images"]["main"][0], chunk.obs["images"]["main"][1])
    assert np.any(chunk.reward != 0), "dense reward should not be identically zero"


def test_auto_reset_reports_episode_stats_and_final_obs(env):
    env.auto_reset = True
    env.set_reset_cursor(40)
    env.reset()
    rewards = [env.step(random_actions(i, (2, 7))).reward for i in range(MAX_STEPS - 2)]
    assert env.get_reset_cursor() == 42
    res = env.chunk_step(random_actions(9, (2, 4, 7)))
    assert res.info["executed"].tolist() == [[True, True, False, False]] * 2
    assert np.all(res.reward[:, 2:] == 0)
    assert res.truncated[:, 1:].all() and not res.truncated[:, 0].any() and not res.terminated.any()
    assert res.info["episode_done"].all()
    np.testing.assert_array_equal(res.info["episode_length"], [MAX_STEPS, MAX_STEPS])
    expected_return = np.sum(rewards, axis=0) + res.reward.sum(axis=1)
    np.testing.assert_allclose(res.info["episode_return"], expected_return, rtol=1e-5)
    assert not res.info["success_once"].any() and not res.info["success_at_end"].any()
    # the envs were reset with the next cursor ids; final_obs keeps the last pre-reset frame
    np.testing.assert_array_equal(res.info["reset_id"], [42, 43])
    assert env.get_reset_cursor() == 44
    assert not np.allclose(res.info["final_obs"]["proprio"], res.obs["proprio"])
    fresh = env.reset([42, 43])
    np.testing.assert_array_equal(res.obs["images"]["main"], fresh["images"]["main"])


def test_fixed_length_mode_ignores_actions_after_done(env):
    env.auto_reset = False
    try:
        env.reset([9, 9])
        for i in range(MAX_STEPS):
            last = env.step(random_actions(i, (2, 7)))
        assert last.truncated.all() and last.info["episode_done"].all()
        cursor = env.get_reset_cursor()
        after = env.chunk_step(random_actions(99, (2, 3, 7)))
        assert not after.info["executed"].any() and not after.info["episode_done"].any()
        assert np.all(after.reward == 0) and after.truncated.all() and not after.terminated.any()
        np.testing.assert_array_equal(after.obs["images"]["main"], last.obs["images"]["main"])
        assert env.get_reset_cursor() == cursor
        env.reset([9], env_ids=[0])
        mixed = env.step(random_actions(5, (2, 7)))
        assert mixed.info["executed"].tolist() == [True, False]
        assert mixed.truncated.tolist() == [False, True]
    finally:
        env.auto_reset = True


def test_get_state_and_set_state_restore_the_scene(env):
    env.reset([12, 12])
    env.step(random_actions(1, (2, 7)))
    snapshot = env.get_state([0])
    before = env.step(random_actions(2, (2, 7)))
    env.step(random_actions(3, (2, 7)))
    restored = env.set_state(snapshot, env_ids=[0])
    again = env.step(random_actions(2, (2, 7)))
    np.testing.assert_allclose(again.obs["proprio"][0], before.obs["proprio"][0], atol=1e-4)
    assert restored["proprio"].shape == (2, 8)


def test_a_killed_worker_is_restarted_and_its_episode_truncated(env):
    env.reset([3, 4])
    restarts = env.worker_restarts
    victim = env.worker_pids()[1]
    os.kill(victim, signal.SIGKILL)
    res = env.step(np.zeros((2, 7), np.float32))
    assert res.info["worker_failed"].tolist() == [False, True]
    assert res.truncated.tolist() == [False, True] and res.info["episode_done"].tolist() == [False, True]
    assert env.worker_restarts == restarts + 1 and env.worker_pids()[1] != victim
    nxt = env.step(np.zeros((2, 7), np.float32))
    assert nxt.info["executed"].all() and not nxt.info["worker_failed"].any()


def test_missing_assets_are_named_not_prompted():
    from simulators.maniskill_env import missing_assets

    assert missing_assets("PickCube-v1") == []
    assert missing_assets("PickSingleYCB-v1") == ["ycb"]


def test_video_of_an_env_is_written_with_overlays(env, tmp_path):
    import imageio.v2 as imageio

    from simulators.video import EpisodeVideo

    path = tmp_path / "episode.mp4"
    with EpisodeVideo(str(path), fps=env.spec.control_hz, env_index=1) as video:
        video.add(env.reset([2, 3]))
        for i in range(3):
            res = env.step(random_actions(i, (2, 7)))
            video.add(res.obs, success=bool(res.info["success"][1]), reward=float(res.reward[1]))
    frames = imageio.mimread(str(path))
    assert len(frames) == 4 and frames[0].shape == (256, 256, 3)
    raw = np.repeat(np.repeat(res.obs["images"]["main"][1], 4, axis=0), 4, axis=1)
    # the middle of the frame is the camera image; the top band carries the instruction text
    assert np.abs(frames[-1][100:150].astype(int) - raw[100:150]).mean() < 12
    assert np.abs(frames[-1][:14].astype(int) - raw[:14]).mean() > 20


@pytest.mark.slow
def test_a_hung_worker_is_detected_by_timeout_and_replaced():
    cfg = EnvConfig(task="PushCube-v1", num_envs=1, image_size=64, step_timeout_s=3.0)
    with make_env(cfg) as e:
        e.reset([0])
        victim = e.worker_pids()[0]
        os.kill(victim, signal.SIGSTOP)
        res = e.step(np.zeros((1, 7), np.float32))
        assert res.info["worker_failed"].tolist() == [True] and res.truncated.tolist() == [True]
        assert e.worker_restarts == 1 and e.worker_pids()[0] != victim
        assert e.step(np.zeros((1, 7), np.float32)).info["executed"].all()
