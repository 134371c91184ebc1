"""Every registered policy family honours the Policy contract (vla_rl/models/base.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vla_rl.config.model import ModelConfig
from vla_rl.models.registry import POLICY_FAMILIES, _load_families, build_policy, load_policy

_load_families()
CAMERAS, PROPRIO, ACTION_DIM = ("main", "wrist"), 9, 7
# One small but complete configuration per family (and per action head); a new family must add itself here.
CONFIGS = {
    "openvla": ModelConfig(family="openvla"),
    "openvla_oft": ModelConfig(family="openvla_oft", action_chunk=2, use_proprio=True, use_wrist=True),
    "openvla_oft_l1": ModelConfig(family="openvla_oft", action_chunk=2, use_proprio=True, use_wrist=True,
                                  action_head="l1_regression"),
    "cnn": ModelConfig(family="cnn", action_chunk=3, use_proprio=True, use_wrist=True),
    "pi0": ModelConfig(family="pi0", action_chunk=3, use_proprio=True, use_wrist=True, denoise_steps=4),
}


def test_every_registered_family_has_a_conformance_config():
    assert sorted({cfg.family for cfg in CONFIGS.values()}) == POLICY_FAMILIES.names()


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def family_policy(request):
    cfg = CONFIGS[request.param]
    return cfg, build_policy(cfg, ACTION_DIM, CAMERAS, PROPRIO, seed=0)


def _obs(make_obs, n, seed=0):
    return make_obs(n, seed=seed, proprio_dim=PROPRIO, wrist=True)


def test_shapes_and_types(family_policy, make_obs):
    cfg, policy = family_policy
    out = policy.act(_obs(make_obs, 5))
    k = cfg.action_chunk
    assert policy.action_chunk == k and policy.action_dim == ACTION_DIM
    assert out.actions.shape == (5, k, ACTION_DIM) and out.actions.dtype == np.float32
    assert out.logprobs.shape == (5, k, ACTION_DIM) and out.logprobs.dtype == torch.float32
    assert out.values.shape == (5,) and not out.values.requires_grad and not out.logprobs.requires_grad
    assert torch.all(out.logprobs <= 0) or not policy.discrete_actions  # a density may exceed 1
    for name, tensor in out.forward_inputs.items():
        assert isinstance(tensor, torch.Tensor) and tensor.shape[0] == 5 and not tensor.requires_grad, name
    chosen = out.forward_inputs[policy.action_key]
    if chosen.dim() == 4:  # a denoising chain (N, steps + 1, K, D) ends in the chosen chunk (D: the padded size)
        chosen = chosen[:, -1, :, :ACTION_DIM]
    assert chosen.shape == (5, k, ACTION_DIM)
    if policy.discrete_actions:
        assert chosen.dtype == torch.int64
        np.testing.assert_array_equal(out.actions, policy.codec.decode(chosen.numpy()))
    else:
        assert chosen.dtype == torch.float32
        np.testing.assert_allclose(out.actions, policy.codec.to_env(chosen.numpy()), atol=1e-6)


def test_act_and_evaluate_agree_on_a_stacked_buffer(family_policy, make_obs):
    _, policy = family_policy
    torch.manual_seed(1)
    steps = [policy.act(_obs(make_obs, 3, seed=s), temperature=0.7) for s in range(2)]
    batch = {k: torch.cat([s.forward_inputs[k] for s in steps]) for k in steps[0].forward_inputs}
    ev = policy.evaluate(batch, temperature=0.7)
    # A density's log moves by (a - mean) / scale^2 per unit of mean: batch-size rounding (~1e-7) costs more there.
    atol = 1e-5 if policy.discrete_actions else 1e-4
    torch.testing.assert_close(ev.logprobs, torch.cat([s.logprobs for s in steps]), atol=atol, rtol=0)
    torch.testing.assert_close(ev.values, torch.cat([s.values for s in steps]), atol=1e-5, rtol=0)
    if policy.discrete_actions:
        assert torch.all(ev.entropy > 0) and torch.all(ev.entropy <= np.log(256) + 1e-4)


def test_greedy_is_deterministic(family_policy, make_obs):
    _, policy = family_policy
    obs = _obs(make_obs, 4, seed=2)
    a, b = policy.act(obs, mode="greedy"), policy.act(obs, mode="greedy")
    assert torch.equal(a.forward_inputs[policy.action_key], b.forward_inputs[policy.action_key])
    np.testing.assert_array_equal(a.actions, b.actions)


def test_value_is_the_acts_value_without_decoding_or_random_draws(family_policy, make_obs):
    """The truncation bootstrap calls `value` where it called a greedy `act`: the numbers and the random stream
    of a rollout must not move (exact resume and pipelined-vs-sequential tests compare runs bit for bit)."""
    _, policy = family_policy
    obs = _obs(make_obs, 4, seed=3)
    torch.manual_seed(5)
    before = torch.get_rng_state()
    values = policy.value(obs)
    assert torch.equal(torch.get_rng_state(), before), "value() drew random numbers"
    greedy = policy.act(obs, mode="greedy")
    assert torch.equal(torch.get_rng_state(), before), "a greedy act() drew random numbers"
    assert values.dtype == greedy.values.dtype and not values.requires_grad
    assert torch.equal(values, greedy.values)
    assert torch.equal(values, policy.act(obs, temperature=0.7).values)
    assert torch.equal(policy.value(_obs(make_obs, 1, seed=3)), policy.act(_obs(make_obs, 1, seed=3), mode="greedy").values)


def test_openvla_value_matches_both_decoders(make_obs):
    policy = build_policy(CONFIGS["openvla"], ACTION_DIM, CAMERAS, PROPRIO, seed=0)
    obs = _obs(make_obs, 3, seed=4)
    for decoder in ("kv_cache", "reference"):
        policy.decoder = decoder
        assert torch.equal(policy.value(obs), policy.act(obs, mode="greedy").values), decoder


def test_torch_observations_act_as_numpy_ones(family_policy, make_obs):
    """A GPU backend (maniskill_gpu) hands images and proprio as torch tensors on its device."""
    _, policy = family_policy
    obs = _obs(make_obs, 3, seed=4)
    tensors = dict(obs, images={c: torch.from_numpy(v) for c, v in obs["images"].items()},
                   proprio=torch.from_numpy(np.asarray(obs["proprio"], np.float32)))
    torch.manual_seed(0)
    a = policy.act(obs, mode="greedy")
    torch.manual_seed(0)
    b = policy.act(tensors, mode="greedy")
    np.testing.assert_array_equal(a.actions, b.actions)


@pytest.mark.gpu
def test_cuda_observations_act_on_a_cuda_policy(family_policy, make_obs):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    import copy

    _, policy = family_policy
    obs = _obs(make_obs, 3, seed=4)
    cuda = dict(obs, images={c: torch.from_numpy(v).cuda() for c, v in obs["images"].items()},
                proprio=torch.from_numpy(np.asarray(obs["proprio"], np.float32)).cuda())
    out = copy.deepcopy(policy).cuda().act(cuda, mode="greedy")
    assert out.actions.shape[0] == 3 and all(t.is_cuda for t in out.forward_inputs.values())


def test_save_load_identity(family_policy, make_obs, tmp_path):
    _, policy = family_policy
    policy.save_pretrained(str(tmp_path))
    loaded = load_policy(str(tmp_path))
    assert type(loaded) is type(policy)
    obs = _obs(make_obs, 4, seed=3)
    torch.manual_seed(5)
    a = policy.act(obs)
    torch.manual_seed(5)
    b = loaded.act(obs)
    np.testing.assert_array_equal(a.actions, b.actions)
    assert torch.equal(a.logprobs, b.logprobs) and torch.equal(a.values, b.values)


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_a_checkpoint_without_value_head_gets_a_fresh_one_for_a_critic(family, make_obs, tmp_path):
    # SFT without a critic, then PPO from it: `model.value_head=true` adds an untrained head.
    from dataclasses import replace

    cfg = CONFIGS[family]
    plain = build_policy(replace(cfg, value_head=False), ACTION_DIM, CAMERAS, PROPRIO, seed=0)
    plain.save_pretrained(str(tmp_path))
    critic = build_policy(replace(cfg, value_head=True, pretrained=str(tmp_path)), ACTION_DIM, CAMERAS, PROPRIO, seed=0)
    obs = _obs(make_obs, 2, seed=4)
    assert plain.act(obs).values is None and critic.act(obs).values.shape == (2,)
    assert plain.value(obs) is None and critic.value(obs).shape == (2,)
    torch.testing.assert_close(plain.act(obs, mode="greedy").logprobs, critic.act(obs, mode="greedy").logprobs)


def test_gradients_reach_every_trainable_parameter(family_policy, make_obs):
    _, policy = family_policy
    out = policy.act(_obs(make_obs, 4, seed=4))
    policy.zero_grad(set_to_none=True)
    ev = policy.evaluate(out.forward_inputs)
    (-(ev.logprobs.sum()) - 0.01 * ev.entropy.sum() + ev.values.square().sum()).backward()
    dead = [n for n, p in policy.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not dead, f"parameters without gradient: {dead[:10]}"
    policy.zero_grad(set_to_none=True)


def test_evaluate_names_a_missing_input(family_policy, make_obs):
    _, policy = family_policy
    fi = dict(policy.act(_obs(make_obs, 2)).forward_inputs)
    del fi[policy.action_key]
    with pytest.raises(KeyError, match=policy.action_key):
        policy.evaluate(fi)
