"""LoRA through peft: what trains, that adapters change the policy, merge/export equivalence, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vla_rl.config.model import LoraConfig, ModelConfig
from vla_rl.models.lora import has_lora, merge_lora
from vla_rl.models.registry import build_policy, load_policy


def _train_a_little(policy, obs, steps=3):
    """A few optimizer steps on a PPO-like surrogate so the adapters move away from their zero init."""
    opt = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=5e-2)
    fi = policy.act(obs).forward_inputs
    for _ in range(steps):
        ev = policy.evaluate(fi)
        loss = -ev.logprobs.sum() + ev.values.square().sum()
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("family,targets", [("openvla", ("q_proj", "v_proj", "down_proj")), ("openvla_oft", ("all-linear",))])
def test_lora_trains_adapters_and_value_head_only(family, targets, make_obs):
    cfg = ModelConfig(family=family, lora=LoraConfig(enabled=True, rank=4, alpha=8.0, target_modules=targets))
    policy = build_policy(cfg, 7, ("main",), 9, seed=0)
    trainable = [n for n, p in policy.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or ".value_head." in n for n in trainable)
    assert any(".value_head." in n for n in trainable)
    assert not any("lm_head" in n for n in trainable)
    # zero-initialised B: the adapter model starts as the base model
    base = build_policy(ModelConfig(family=family), 7, ("main",), 9, seed=0)
    obs = make_obs(3)
    torch.testing.assert_close(policy.act(obs, mode="greedy").logprobs, base.act(obs, mode="greedy").logprobs)
    _train_a_little(policy, obs)
    assert not torch.allclose(policy.act(obs, mode="greedy").logprobs, base.act(obs, mode="greedy").logprobs)


def test_merged_export_acts_like_the_adapter_model(make_obs, tmp_path):
    cfg = ModelConfig(lora=LoraConfig(enabled=True, rank=4, alpha=8.0))
    policy = build_policy(cfg, 7, ("main",), 9, seed=1)
    obs = make_obs(4, seed=1)
    _train_a_little(policy, obs)
    adapter_out = policy.act(obs, mode="greedy")
    fi = adapter_out.forward_inputs
    adapter_eval = policy.evaluate(fi)

    policy.save_pretrained(str(tmp_path / "adapter"))
    assert (tmp_path / "adapter" / "lora_adapter" / "adapter_model.safetensors").is_file()
    reloaded = load_policy(str(tmp_path / "adapter"))
    assert has_lora(reloaded.net)
    torch.testing.assert_close(reloaded.evaluate(fi).logprobs, adapter_eval.logprobs, atol=1e-6, rtol=0)

    merge_lora(policy)
    assert not has_lora(policy.net) and all(p.requires_grad for p in policy.parameters())
    merged_out = policy.act(obs, mode="greedy")
    assert torch.equal(merged_out.forward_inputs["action_tokens"], adapter_out.forward_inputs["action_tokens"])
    np.testing.assert_array_equal(merged_out.actions, adapter_out.actions)
    torch.testing.assert_close(policy.evaluate(fi).logprobs, adapter_eval.logprobs, atol=1e-5, rtol=0)

    policy.save_pretrained(str(tmp_path / "merged"))
    assert not (tmp_path / "merged" / "lora_adapter").exists()
    exported = load_policy(str(tmp_path / "merged"))
    assert not has_lora(exported.net)
    np.testing.assert_array_equal(exported.act(obs, mode="greedy").actions, adapter_out.actions)


def test_targets_that_match_nothing_are_refused():
    cfg = ModelConfig(family="cnn", lora=LoraConfig(enabled=True, target_modules=("q_proj",)))
    with pytest.raises(ValueError, match="match no linear layer"):
        build_policy(cfg, 7, ("main",), 9, seed=0)
