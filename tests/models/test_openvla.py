"""The tiny OpenVLA-style policy: act/evaluate agreement, KV-cache decoding, padding, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vla_rl.config.model import ModelConfig
from vla_rl.models.openvla.decoding import decode_reference, decode_with_cache
from vla_rl.models.registry import build_policy, load_policy


@pytest.fixture(scope="module")
def policy():
    return build_policy(ModelConfig(family="openvla", size="tiny"), 7, ("main",), 9, seed=0)


def test_act_shapes_and_forward_inputs(policy, make_obs):
    out = policy.act(make_obs(5, size=96))
    assert out.actions.shape == (5, 1, 7) and out.actions.dtype == np.float32
    assert np.all(np.abs(out.actions) <= 1.0)
    assert out.logprobs.shape == (5, 1, 7) and out.values.shape == (5,)
    fi = out.forward_inputs
    assert set(fi) == {"input_ids", "attention_mask", "images", "action_tokens"}
    assert fi["images"].shape == (5, 3, 64, 64) and fi["images"].dtype == torch.uint8
    assert fi["input_ids"].shape == fi["attention_mask"].shape == (5, 128)
    tok = fi["action_tokens"]
    first = policy.tokenizer.vocab_size - 256
    assert tok.shape == (5, 1, 7) and tok.min() >= first and tok.max() < policy.tokenizer.vocab_size
    np.testing.assert_array_equal(out.actions[:, 0], policy.codec.decode(tok[:, 0].numpy()))


@pytest.mark.parametrize("temperature", [1.0, 0.6, 1.6])
def test_act_and_evaluate_log_probs_agree(policy, temperature, make_obs):
    torch.manual_seed(0)
    out = policy.act(make_obs(8, seed=1), mode="sample", temperature=temperature)
    ev = policy.evaluate(out.forward_inputs, temperature=temperature)
    torch.testing.assert_close(ev.logprobs, out.logprobs, atol=1e-5, rtol=0)
    torch.testing.assert_close(ev.values, out.values, atol=1e-5, rtol=0)
    assert ev.entropy.shape == (8, 1, 7)
    assert torch.all(ev.entropy > 0) and torch.all(ev.entropy <= np.log(256) + 1e-4)
    assert ev.logprobs.requires_grad


def test_greedy_reports_temperature_one_log_probs(policy, make_obs):
    out = policy.act(make_obs(4, seed=2), mode="greedy", temperature=0.3)
    ev = policy.evaluate(out.forward_inputs, temperature=1.0)
    torch.testing.assert_close(ev.logprobs, out.logprobs, atol=1e-5, rtol=0)
    again = policy.act(make_obs(4, seed=2), mode="greedy")
    assert torch.equal(again.forward_inputs["action_tokens"], out.forward_inputs["action_tokens"])


def _prefix(policy, obs):
    inputs = policy.prepare(obs)
    return policy.net.prefix(inputs["input_ids"], inputs["attention_mask"], inputs["images"])


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_kv_cache_decoder_matches_reference(policy, temperature, make_obs):
    embeds, mask = _prefix(policy, make_obs(6, seed=3))
    gen = torch.Generator().manual_seed(7)
    fast = decode_with_cache(policy.net, embeds, mask, 7, "sample", temperature, gen)
    gen.manual_seed(7)
    slow = decode_reference(policy.net, embeds, mask, 7, "sample", temperature, gen)
    assert torch.equal(fast[0], slow[0])  # same tokens from the same random stream
    torch.testing.assert_close(fast[1], slow[1], atol=1e-5, rtol=0)
    torch.testing.assert_close(fast[2], slow[2], atol=1e-5, rtol=0)
    greedy_fast = decode_with_cache(policy.net, embeds, mask, 7, "greedy", 1.0)
    greedy_slow = decode_reference(policy.net, embeds, mask, 7, "greedy", 1.0)
    assert torch.equal(greedy_fast[0], greedy_slow[0])
    torch.testing.assert_close(greedy_fast[1], greedy_slow[1], atol=1e-5, rtol=0)


def test_batching_and_padding_do_not_change_an_env(policy, make_obs):
    obs = make_obs(4, seed=4)  # four instructions of different lengths
    batch = policy.act(obs, mode="greedy")
    for i in range(4):
        alone = {"images": {"main": obs["images"]["main"][i:i + 1]}, "instruction": [obs["instruction"][i]],
                 "proprio": obs["proprio"][i:i + 1]}
        single = policy.act(alone, mode="greedy")
        assert torch.equal(single.forward_inputs["action_tokens"], batch.forward_inputs["action_tokens"][i:i + 1])
        torch.testing.assert_close(single.logprobs, batch.logprobs[i:i + 1], atol=1e-5, rtol=0)
        torch.testing.assert_close(single.values, batch.values[i:i + 1], atol=1e-5, rtol=0)


def test_evaluate_on_a_minibatch_mixed_from_steps(policy, make_obs):
    a = policy.act(make_obs(3, seed=5))
    b = policy.act(make_obs(3, seed=6))
    mixed = {k: torch.cat([a.forward_inputs[k], b.forward_inputs[k]]) for k in a.forward_inputs}
    ev = policy.evaluate(mixed)
    torch.testing.assert_close(ev.logprobs, torch.cat([a.logprobs, b.logprobs]), atol=1e-5, rtol=0)


def test_save_load_gives_identical_outputs(policy, tmp_path, make_obs):
    policy.save_pretrained(str(tmp_path))
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (tmp_path / name).is_file()
    loaded = load_policy(str(tmp_path))
    obs = make_obs(4, seed=8)
    torch.manual_seed(11)
    a = policy.act(obs)
    torch.manual_seed(11)
    b = loaded.act(obs)
    np.testing.assert_array_equal(a.actions, b.actions)
    assert torch.equal(a.logprobs, b.logprobs) and torch.equal(a.values, b.values)
    ev_a, ev_b = policy.evaluate(a.forward_inputs), loaded.evaluate(a.forward_inputs)
    assert torch.equal(ev_a.logprobs, ev_b.logprobs)


def test_no_value_head_and_image_size_override(make_obs):
    p = build_policy(ModelConfig(size="tiny", value_head=False, image_size=32), 7, ("main",), 0, seed=1)
    out = p.act(make_obs(2, size=80))
    assert out.values is None and out.forward_inputs["images"].shape == (2, 3, 32, 32)
    assert p.evaluate(out.forward_inputs).values is None


def test_seeded_build_is_reproducible():
    cfg = ModelConfig(size="tiny")
    p1 = build_policy(cfg, 7, ("main",), 9, seed=3)
    p2 = build_policy(cfg, 7, ("main",), 9, seed=3)
    for (n1, t1), (n2, t2) in zip(p1.state_dict().items(), p2.state_dict().items()):
        assert n1 == n2 and torch.equal(t1, t2), n1


def test_gripper_convention_is_applied_on_decode(make_obs):
    cfg = ModelConfig(size="tiny", policy_gripper_convention="open_positive")
    p = build_policy(cfg, 7, ("main",), 9, seed=0, gripper_convention="close_positive")
    out = p.act(make_obs(3), mode="greedy")
    same = build_policy(ModelConfig(size="tiny"), 7, ("main",), 9, seed=0, gripper_convention="close_positive")
    ref = same.act(make_obs(3), mode="greedy")
    np.testing.assert_allclose(out.actions[..., -1], -ref.actions[..., -1])
    np.testing.assert_array_equal(out.actions[..., :-1], ref.actions[..., :-1])


def test_evaluate_names_missing_inputs(policy):
    with pytest.raises(KeyError, match="action_tokens"):
        policy.evaluate({"input_ids": torch.zeros(1, 4, dtype=torch.long)})
