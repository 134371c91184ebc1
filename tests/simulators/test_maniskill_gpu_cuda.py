"""The "maniskill_gpu" backend on GPU physics: many envs per scene, tensors on the GPU (needs CUDA).

One module env: PushCube RGB 64 px, 8 envs in 2 GPU scenes of 4, dense reward, 6-step episodes.
The episode logic itself is tested on CPU physics in test_maniskill_gpu.py; these check what only a
GPU scene has: several envs stepped together, partial resets inside a scene, device tensors, and the
collectors consuming them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from random_actions import random_actions

pytestmark = pytest.mark.gpu

MAX_STEPS = 6


@pytest.fixture(scope="module")
def env():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from simulators import make_env
    from vla_rl.config.env import EnvConfig

    e = make_env(EnvConfig(backend="maniskill_gpu", task="PushCube-v1", num_envs=8, num_workers=2, image_size=64,
                           reward_mode="dense", max_episode_steps=MAX_STEPS))
    yield e
    e.close()


def test_tensors_live_on_the_gpu(env):
    assert env.spec.extras["device"].startswith("cuda") and env.worker_env_ids() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    obs = env.reset(list(range(8)))
    assert obs["images"]["main"].is_cuda and obs["images"]["main"].shape == (8, 64, 64, 3)
    assert obs["proprio"].is_cuda
    res = env.chunk_step(random_actions(0, (8, 2, 7)))
    assert res.reward.is_cuda and res.terminated.is_cuda and res.obs["images"]["main"].is_cuda
    assert isinstance(res.info["episode_done"], np.ndarray)


def test_a_reset_id_names_one_state_whatever_is_reset_with_it(env):
    obs = env.reset([5, 5, 6, 6, 5, 9, 9, 9])
    img, prop = obs["images"]["main"], obs["proprio"]
    for a, b in [(0, 1), (0, 4), (2, 3), (5, 6), (6, 7)]:
        assert torch.equal(img[a], img[b]) and torch.equal(prop[a], prop[b]), (a, b)
    assert not torch.equal(img[0], img[2])
    alone = env.reset([5], env_ids=[7])  # a partial reset inside a scene, with other envs mid-episode
    assert torch.equal(alone["images"]["main"][7], img[0])
    assert torch.equal(alone["images"]["main"][5], img[5])


def test_a_partial_reset_leaves_the_other_envs_of_the_scene_running(env):
    env.reset(list(range(8)))
    a = random_actions(1, (8, 3, 7))
    ref = env.chunk_step(a)
    env.reset(list(range(8)))
    env.chunk_step(a[:, :2])
    env.reset([100], env_ids=[0])
    part = env.chunk_step(a[:, 2:])
    # env 1 (same scene, not reset) continued as in the uninterrupted chunk (a reset re-applies the
    # scene's GPU buffers, so allow solver noise; a reset would move the arm by ~1e-2)
    assert part.info["reset_id"][1] == 1 and part.info["reset_id"][0] == 100
    torch.testing.assert_close(part.obs["proprio"][1], ref.obs["proprio"][1], rtol=0, atol=1e-3)


def test_async_chunks_take_whole_scenes(env):
    env.reset(list(range(8)))
    with pytest.raises(ValueError, match="part of a GPU scene"):
        env.chunk_step_async(random_actions(0, (2, 1, 7)), [0, 1])
    a = random_actions(2, (8, 2, 7))
    sync = env.chunk_step(a)
    env.reset(list(range(8)))
    env.chunk_step_async(a[4:], [4, 5, 6, 7])
    env.chunk_step_async(a[:4], [0, 1, 2, 3])
    late, early = env.chunk_step_wait(), env.chunk_step_wait()
    torch.testing.assert_close(torch.cat([early.reward, late.reward]), sync.reward)


def test_collectors_run_on_gpu_tensors_sequential_equals_pipelined(env):
    from vla_rl.config.model import ModelConfig
    from vla_rl.models.registry import build_policy
    from vla_rl.runner.buffer import RolloutBuffer
    from vla_rl.runner.collect import collect_window, one_stage

    s = env.spec
    policy = build_policy(ModelConfig(family="cnn", size="tiny"), action_dim=s.action_dim, cameras=s.cameras,
                          proprio_dim=s.proprio_dim, seed=0, gripper_convention=s.gripper_convention).cuda().eval()
    env.auto_reset = True
    buffers = []
    for pipelined in (False, True):
        buf = RolloutBuffer(steps=8, num_envs=8)
        obs = env.reset(list(range(8)))
        env.set_reset_cursor(100)  # the auto-resets of both runs draw the same ids
        torch.manual_seed(0)
        stages = env.worker_env_ids() if pipelined else one_stage(env)
        collect_window(env, policy, buf, obs, 1e-4, stages, progress=False)
        buffers.append(buf)
    seq, pipe = buffers
    torch.testing.assert_close(seq.flat("step_rewards"), pipe.flat("step_rewards"))
    assert torch.equal(seq.flat("step_truncated"), pipe.flat("step_truncated"))
    assert bool(seq.flat("step_truncated").any()), "8 steps of 6-step episodes cross an auto-reset"
