"""The "maniskill_gpu" backend: config errors, and its episode logic on ManiSkill's CPU physics.

ManiSkill accepts `sim_backend="physx_cpu"` with one env per scene, so the backend's own code (seeded
per-env resets, tensor episode bookkeeping, chunks with observations off between rendered steps,
whole-scene async chunks) runs here on two scenes of one env each: PushCube, 64 px, dense reward,
6-step episodes, spawn square 0.25. Tests that need CUDA (many envs per scene, tensors on the GPU)
are marked `gpu` (tests/simulators/test_maniskill_gpu_cuda.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simulators import make_env
from vla_rl.config.core import ConfigError, from_dict
from vla_rl.config.env import EnvConfig
from random_actions import random_actions

MAX_STEPS = 6


def _cfg(**kw) -> EnvConfig:
    base = dict(backend="maniskill_gpu", task="PushCube-v1", num_envs=2, num_workers=2, image_size=64,
                reward_mode="dense", max_episode_steps=MAX_STEPS, spawn_scale=0.25)
    return EnvConfig(**{**base, **kw})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_without_cuda_choosing_it_is_a_config_error_naming_the_cpu_backend():
    with pytest.raises(ConfigError, match="env.backend=maniskill "):
        make_env(_cfg())


def test_its_config_takes_the_maniskill_keys_and_refuses_others():
    cfg = _cfg(mesh_detail=0.1)
    assert type(cfg).__name__ == "ManiSkillGPUEnvConfig" and cfg.spawn_scale == 0.25 and cfg.mesh_detail == 0.1
    with pytest.raises(ConfigError, match="settle_steps"):
        from_dict(EnvConfig, {"backend": "maniskill_gpu", "settle_steps": 3}, prefix="env")
    with pytest.raises(ConfigError, match="spawn_scale"):  # the CPU backend's task checks apply before CUDA's
        make_env(_cfg(task="PickCube-v1"))
    with pytest.raises(ConfigError, match="no wrist camera"):
        make_env(_cfg(task="PushT-v1", spawn_scale=1.0, cameras=("main", "wrist")))


@pytest.fixture(scope="module")
def env():
    from simulators.maniskill_gpu import ManiSkillGPUVectorEnv

    e = ManiSkillGPUVectorEnv(_cfg(), sim_backend="physx_cpu", render_backend="sapien_cpu")
    yield e
    e.close()


def test_observations_and_results_are_tensors_info_is_numpy(env):
    s = env.spec
    assert (s.backend, s.action_dim, s.proprio_dim, s.max_episode_steps, s.gripper_convention) == (
        "maniskill_gpu", 7, 8, MAX_STEPS, "open_positive")
    assert s.extras["num_scenes"] == 2 and s.extras["spawn_scale"] == 0.25
    assert env.worker_env_ids() == [[0], [1]]
    obs = env.reset([4, 5])
    img = obs["images"]["main"]
    assert isinstance(img, torch.Tensor) and img.dtype == torch.uint8 and img.shape == (2, 64, 64, 3)
    assert obs["proprio"].dtype == torch.float32 and obs["proprio"].shape == (2, 8)
    assert obs["instruction"] == ["push the blue cube onto the red and white target"] * 2
    res = env.chunk_step(torch.as_tensor(random_actions(0, (2, 3, 7))))
    assert res.reward.shape == (2, 3) and res.terminated.dtype == torch.bool and res.truncated.shape == (2, 3)
    assert isinstance(res.info["executed"], np.ndarray) and res.info["executed"].all()
    assert res.info["reset_id"].tolist() == [4, 5]
    assert bool((res.reward != 0).any()), "dense reward should not be identically zero"


def test_equal_reset_ids_give_identical_states_and_the_cpu_backends_state(env):
    from simulators.maniskill_env import ManiSkillSingleEnv

    obs = env.reset([7, 7])
    torch.testing.assert_close(obs["images"]["main"][0], obs["images"]["main"][1], rtol=0, atol=0)
    cpu = ManiSkillSingleEnv("PushCube-v1", 64, ("main",), "dense", MAX_STEPS, spawn_scale=0.25)
    try:
        ref = cpu.reset(7)
        np.testing.assert_array_equal(obs["images"]["main"][0].numpy(), ref["images"]["main"])
        np.testing.assert_array_equal(obs["proprio"][0].numpy(), ref["proprio"])
        a = random_actions(3, (2, 4, 7))
        res = env.chunk_step(a)
        steps = [cpu.step(a[0, k]) for k in range(4)]
        np.testing.assert_allclose(res.reward[0].numpy(), [s.reward for s in steps], rtol=1e-6)
        np.testing.assert_array_equal(res.obs["images"]["main"][0].numpy(), steps[-1].obs["images"]["main"])
    finally:
        cpu.close()
    other = env.reset([8], env_ids=[1])
    assert not torch.equal(other["images"]["main"][0], other["images"]["main"][1])


def test_an_episode_ending_mid_chunk_stops_executing_and_auto_resets_from_the_cursor(env):
    env.auto_reset = True
    env.set_reset_cursor(40)
    env.reset()
    assert env.get_reset_cursor() == 42
    first = env.chunk_step(random_actions(1, (2, MAX_STEPS - 2, 7)))
    res = env.chunk_step(random_actions(2, (2, 4, 7)))
    assert res.info["executed"].tolist() == [[True, True, False, False]] * 2
    assert bool((res.reward[:, 2:] == 0).all())
    assert bool(res.truncated[:, 1:].all()) and not bool(res.truncated[:, 0].any()) and not bool(res.terminated.any())
    assert res.info["episode_done"].all()
    np.testing.assert_array_equal(res.info["episode_length"], [MAX_STEPS, MAX_STEPS])
    expected = first.reward.sum(1) + res.reward.sum(1)
    np.testing.assert_allclose(res.info["episode_return"], expected.numpy(), rtol=1e-5)
    np.testing.assert_array_equal(res.info["reset_id"], [42, 43])
    assert env.get_reset_cursor() == 44
    assert not torch.allclose(res.info["final_obs"]["proprio"], res.obs["proprio"])
    fresh = env.reset([42, 43])
    torch.testing.assert_close(res.obs["images"]["main"], fresh["images"]["main"], rtol=0, atol=0)


def test_final_obs_of_an_episode_ending_mid_chunk_is_its_last_executed_frame(env):
    """Steps before the chunk's last run with observations off; an ending step renders its own frame."""
    env.auto_reset = True
    env.reset([11, 11])
    a = random_actions(4, (2, MAX_STEPS, 7))
    env.chunk_step(a[:, : MAX_STEPS - 2])
    whole = env.chunk_step(np.concatenate([a[:, MAX_STEPS - 2:], a[:, :2]], 1))  # ends at its 2nd of 4 steps
    env.reset([11, 11])
    env.chunk_step(a[:, : MAX_STEPS - 2])
    exact = env.chunk_step(a[:, MAX_STEPS - 2:])  # ends at its last step: rendered normally
    torch.testing.assert_close(whole.info["final_obs"]["images"]["main"], exact.info["final_obs"]["images"]["main"],
                               rtol=0, atol=0)
    torch.testing.assert_close(whole.info["final_obs"]["proprio"], exact.info["final_obs"]["proprio"])


def test_fixed_length_mode_ignores_actions_after_done(env):
    env.auto_reset = False
    try:
        env.reset([9, 9])
        for i in range(MAX_STEPS):
            last = env.step(random_actions(i, (2, 7)))
        assert bool(last.truncated.all()) and last.info["episode_done"].all()
        cursor = env.get_reset_cursor()
        after = env.chunk_step(random_actions(99, (2, 3, 7)))
        assert not after.info["executed"].any() and not after.info["episode_done"].any()
        assert bool((after.reward == 0).all()) and bool(after.truncated.all()) and not bool(after.terminated.any())
        torch.testing.assert_close(after.obs["images"]["main"], last.obs["images"]["main"], rtol=0, atol=0)
        assert env.get_reset_cursor() == cursor
        env.reset([9], env_ids=[0])
        mixed = env.step(random_actions(5, (2, 7)))
        assert mixed.info["executed"].tolist() == [True, False]
        assert mixed.truncated.tolist() == [False, True]
    finally:
        env.auto_reset = True


def test_async_chunks_per_scene_equal_a_synchronous_chunk(env):
    a = random_actions(6, (2, 2, 7))
    env.reset([10, 12])
    sync = env.chunk_step(a)
    env.reset([10, 12])
    env.chunk_step_async(a[1:], [1])
    env.chunk_step_async(a[:1], [0])
    assert env.pending_chunks == 2
    with pytest.raises(RuntimeError, match="pending"):
        env.reset([0, 0])
    with pytest.raises(RuntimeError, match="still stepping"):
        env.chunk_step_async(a[1:], [1])
    late, early = env.chunk_step_wait(), env.chunk_step_wait()
    torch.testing.assert_close(torch.cat([early.reward, late.reward]), sync.reward)
    torch.testing.assert_close(torch.cat([early.obs["images"]["main"], late.obs["images"]["main"]]),
                               sync.obs["images"]["main"], rtol=0, atol=0)
    assert late.info["reset_id"].tolist() == [12] and early.info["executed"].shape == (1, 2)
    # both scenes in one call, rows in the order asked for
    env.reset([10, 12])
    env.chunk_step_async(a[::-1].copy(), [1, 0])
    both = env.chunk_step_wait()
    torch.testing.assert_close(both.reward, sync.reward.flip(0))


def test_bad_actions_are_refused(env):
    env.reset([0, 1])
    with pytest.raises(ValueError, match="shape"):
        env.chunk_step(np.zeros((2, 7), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        env.chunk_step(np.full((2, 1, 7), np.nan, np.float32))
    with pytest.raises(ValueError, match="distinct"):
        env.chunk_step_async(np.zeros((2, 1, 7), np.float32), [0, 0])


def test_collectors_keep_its_tensors_and_pipelined_equals_sequential(env):
    """The rollout collectors take the backend's torch observations and dones as they come (on a GPU they are
    device tensors: no numpy conversion), and one scene per stage pipelines like the CPU backend's workers."""
    from vla_rl.config.model import ModelConfig
    from vla_rl.models.registry import build_policy
    from vla_rl.runner.buffer import RolloutBuffer
    from vla_rl.runner.collect import collect_window, one_stage

    s = env.spec
    policy = build_policy(ModelConfig(family="cnn", size="tiny", value_head=True, action_chunk=3), action_dim=s.action_dim,
                          cameras=s.cameras, proprio_dim=s.proprio_dim, seed=0,
                          gripper_convention=s.gripper_convention).eval()
    env.auto_reset = True
    runs = []
    for pipelined in (False, True):
        buf = RolloutBuffer(steps=3, num_envs=2)  # 3 chunks of 3 actions: one auto-reset
        obs = env.reset([20, 21])
        env.set_reset_cursor(100)  # the auto-resets of both runs draw the same ids
        torch.manual_seed(0)
        stages = env.worker_env_ids() if pipelined else one_stage(env)
        out = collect_window(env, policy, buf, obs, 1e-4, stages, progress=False)
        runs.append((buf, out))
    (seq, (seq_obs, _, seq_last)), (pipe, (pipe_obs, _, pipe_last)) = runs
    assert isinstance(pipe_obs["images"]["main"], torch.Tensor) and isinstance(pipe_obs["proprio"], torch.Tensor)
    torch.testing.assert_close(pipe_obs["images"]["main"], seq_obs["images"]["main"], rtol=0, atol=0)
    torch.testing.assert_close(seq.flat("step_rewards"), pipe.flat("step_rewards"))
    assert torch.equal(seq.flat("step_truncated"), pipe.flat("step_truncated"))
    assert bool(seq.flat("step_truncated").any()), "9 steps of 6-step episodes cross an auto-reset"
    torch.testing.assert_close(seq.flat("bootstrap_values"), pipe.flat("bootstrap_values"))
    torch.testing.assert_close(seq_last, pipe_last)
