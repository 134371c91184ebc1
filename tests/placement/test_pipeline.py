"""The asynchronous chunk API of the vectorised env and the pipelined collectors, on real ManiSkill3.

One module env: PickCube RGB, 2 envs in 2 worker processes (one per pipeline stage), 3-step episodes so
windows cross auto-resets. A real tiny OpenVLA policy acts at a temperature so low that sampling is
argmax: then a pipelined rollout (2 stages of 1 env) must fill the buffer exactly like the
sequential (one-stage) one (same actions, rewards, flags, bootstrap values) - the update code sees no difference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from placement.replay_env import ReplayEnv
from simulators import make_env
from vla_rl.config.env import EnvConfig
from vla_rl.config.model import ModelConfig
from vla_rl.models.registry import build_policy
from vla_rl.runner.buffer import RolloutBuffer
from vla_rl.runner.collect import check_stages, collect_episodes, collect_window, one_stage

STAGES = [[0], [1]]
COLD = 1e-4  # sampling temperature that makes every draw the argmax


@pytest.fixture(scope="module")
def env():
    e = make_env(EnvConfig(task="PickCube-v1", num_envs=2, num_workers=2, image_size=64, reward_mode="dense",
                           max_episode_steps=3, step_timeout_s=60.0))
    yield e
    e.close()


@pytest.fixture(scope="module")
def policy(env):
    s = env.spec
    return build_policy(ModelConfig(family="openvla", size="tiny"), action_dim=s.action_dim, cameras=s.cameras,
                        proprio_dim=s.proprio_dim, seed=0, gripper_convention=s.gripper_convention).eval()


def _actions(seed: int, n: int, k: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, size=(n, k, 7)).astype(np.float32)


def test_async_chunks_equal_a_synchronous_chunk(env):
    env.auto_reset = True
    env.reset([10, 11])
    a = _actions(0, 2, 2)
    sync = env.chunk_step(a)
    env.reset([10, 11])
    env.chunk_step_async(a[1:], [1])
    env.chunk_step_async(a[:1], [0])  # another worker: both in flight at once
    assert env.pending_chunks == 2
    late, early = env.chunk_step_wait(), env.chunk_step_wait()  # oldest first
    np.testing.assert_array_equal(np.concatenate([early.reward, late.reward]), sync.reward)
    np.testing.assert_array_equal(np.concatenate([early.obs["images"]["main"], late.obs["images"]["main"]]),
                                  sync.obs["images"]["main"])
    assert early.info["executed"].shape == (1, 2) and list(late.info["reset_id"]) == [11]


def test_async_refuses_busy_workers_and_calls_while_pending(env):
    assert env.worker_env_ids() == STAGES
    env.reset([0, 1])
    env.chunk_step_async(_actions(1, 1), [0])
    with pytest.raises(RuntimeError, match="still stepping a pending chunk"):
        env.chunk_step_async(_actions(1, 1), [0])  # worker 0 is busy with the first chunk
    with pytest.raises(RuntimeError, match="pending"):
        env.reset()
    env.chunk_step_wait()
    with pytest.raises(RuntimeError, match="without a pending"):
        env.chunk_step_wait()


class _Layout:
    """How envs sit in workers: the input `check_stages` reads (num_envs, worker_env_ids())."""

    def __init__(self, blocks):
        self.blocks, self.num_envs = blocks, sum(len(b) for b in blocks)

    def worker_env_ids(self):
        return self.blocks


def test_stages_must_be_consecutive_and_own_their_workers():
    check_stages(_Layout([[0, 1], [2, 3]]), [[0, 1], [2, 3]])
    check_stages(_Layout([[0], [1], [2], [3]]), [[0, 1], [2, 3]])
    with pytest.raises(ValueError, match="consecutive blocks"):
        check_stages(_Layout([[0, 1], [2, 3]]), [[0, 2], [1, 3]])
    with pytest.raises(ValueError, match="holds envs"):
        check_stages(_Layout([[0, 1, 2], [3]]), [[0, 1], [2, 3]])


def _window(env, policy, pipelined: bool):
    env.auto_reset = True
    env.set_reset_cursor(100)
    obs = env.reset()
    buffer = RolloutBuffer(5, env.num_envs)
    torch.manual_seed(0)
    stages = STAGES if pipelined else one_stage(env)
    obs, stats, last = collect_window(env, policy, buffer, obs, COLD, stages, progress=False)
    return buffer, obs, stats, last, env.get_reset_cursor()


def test_pipelined_window_fills_the_buffer_like_the_sequential_one(env, policy):
    seq, seq_obs, seq_stats, seq_last, seq_cursor = _window(env, policy, pipelined=False)
    pip, pip_obs, pip_stats, pip_last, pip_cursor = _window(env, policy, pipelined=True)
    assert pip.t == seq.t == 5 and set(pip.data) == set(seq.data) and set(pip.forward_inputs) == set(seq.forward_inputs)
    for key in seq.forward_inputs:
        torch.testing.assert_close(pip.forward_inputs[key], seq.forward_inputs[key], rtol=0, atol=0)
    for key in ("step_rewards", "step_terminated", "step_truncated"):
        torch.testing.assert_close(pip.view(key), seq.view(key), rtol=0, atol=0)
    assert bool(seq.view("step_truncated").any())  # the window crossed auto-resets
    for key in ("values", "bootstrap_values"):
        torch.testing.assert_close(pip.view(key), seq.view(key), rtol=1e-4, atol=1e-4)
    # at temperature 1e-4 a 1e-8 difference in logits (batch of 2 vs 4) moves a log-prob by 1e-4
    torch.testing.assert_close(pip.view("old_logprobs"), seq.view("old_logprobs"), rtol=0, atol=1e-2)
    assert bool((seq.view("bootstrap_values") != 0).any())
    torch.testing.assert_close(pip_last, seq_last, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(pip_obs["images"]["main"], seq_obs["images"]["main"])
    assert pip_cursor == seq_cursor
    assert sorted(pip_stats.returns) == pytest.approx(sorted(seq_stats.returns))


def test_pipelined_episodes_fill_the_buffer_like_the_sequential_ones(env, policy):
    env.auto_reset = False
    try:
        buffers = []
        for stages in (one_stage(env), STAGES):
            buffer = RolloutBuffer(6, env.num_envs)
            stats = collect_episodes(env, policy, buffer, [7, 8], COLD, stages, progress=False)
            buffers.append((buffer, stats))
    finally:
        env.auto_reset = True
    (seq, seq_stats), (pip, pip_stats) = buffers
    assert seq.t == pip.t == 3  # every episode ended after 3 steps: both stop there
    for key in ("step_rewards", "step_terminated", "step_truncated"):
        torch.testing.assert_close(pip.view(key), seq.view(key), rtol=0, atol=0)
    torch.testing.assert_close(pip.forward_inputs["action_tokens"][:3], seq.forward_inputs["action_tokens"][:3])
    assert len(pip_stats.returns) == len(seq_stats.returns) == 2
    assert env.pending_chunks == 0


def test_replay_env_restores_episodes_in_flight_exactly(env):
    replay = ReplayEnv(env)
    replay.auto_reset = True
    replay.reset([20, 21])
    replay.chunk_step(_actions(3, 2))
    replay.chunk_step_async(_actions(4, 1), [1])
    replay.chunk_step_wait()
    saved, cursor = replay.get_state(), replay.get_reset_cursor()
    assert [len(a) for a in saved["actions"]] == [1, 2]
    after = [replay.chunk_step(_actions(5 + i, 2)) for i in range(2)]
    replay.set_reset_cursor(cursor)  # a checkpoint holds the cursor too (auto-resets below draw from it)
    restored = replay.set_state(saved)
    assert restored["proprio"].shape == (2, 8)
    again = [replay.chunk_step(_actions(5 + i, 2)) for i in range(2)]
    assert after[-1].info["episode_done"].any()  # the comparison crosses an auto-reset
    for x, y in zip(after, again):
        np.testing.assert_array_equal(x.reward, y.reward)
        np.testing.assert_array_equal(x.obs["images"]["main"], y.obs["images"]["main"])
        np.testing.assert_array_equal(x.info["episode_return"], y.info["episode_return"])


def _allowed_cores(pid: int) -> set[int]:
    import os

    return {c for tid in os.listdir(f"/proc/{pid}/task") for c in os.sched_getaffinity(int(tid))}


def test_pinning_env_workers_and_this_process():
    import os

    from placement.cluster import pinned

    cores = sorted(os.sched_getaffinity(0))
    with pinned(cores[:1]):
        assert os.sched_getaffinity(0) == {cores[0]} and torch.get_num_threads() == 1
    assert sorted(os.sched_getaffinity(0)) == cores


def test_pin_workers_restricts_every_thread_of_every_worker(env):
    import os

    cores = sorted(os.sched_getaffinity(0))
    try:
        env.pin_workers(cores[-1:])
        assert all(_allowed_cores(pid) == {cores[-1]} for pid in env.worker_pids())
    finally:
        env.pin_workers(cores)
    assert all(_allowed_cores(pid) == set(cores) for pid in env.worker_pids())
