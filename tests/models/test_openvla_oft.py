"""The OFT-style family: parallel chunk decoding, its attention mask, batching with proprio and wrist."""

from __future__ import annotations

import torch

from vla_rl.config.model import ModelConfig
from vla_rl.models.openvla_oft.network import action_block_mask
from vla_rl.models.registry import build_policy


def test_mask_is_causal_over_the_prompt_and_bidirectional_in_the_block():
    valid = torch.tensor([[1, 0, 1, 1, 1, 1]])
    allowed = action_block_mask(valid, block_start=4, bidirectional_prompt=False, dtype=torch.float32)[0, 0] == 0
    expected = torch.tensor([
        [1, 0, 0, 0, 0, 0],
        [1, 0, 0, 0, 0, 0],
        [1, 0, 1, 0, 0, 0],
        [1, 0, 1, 1, 0, 0],
        [1, 0, 1, 1, 1, 1],
        [1, 0, 1, 1, 1, 1],
    ], dtype=torch.bool)
    assert torch.equal(allowed, expected)
    full = action_block_mask(valid, 4, True, torch.float32)[0, 0] == 0
    assert torch.equal(full, valid.bool().expand(6, 6))


def _policy(k, bidirectional, seed=0):
    cfg = ModelConfig(family="openvla_oft", action_chunk=k, use_proprio=True, use_wrist=True,
                      bidirectional_prompt=bidirectional)
    return build_policy(cfg, 7, ("main", "wrist"), 9, seed=seed)


def test_prompt_states_ignore_the_action_block_only_when_causal(make_obs):
    obs = make_obs(2, wrist=True)
    with torch.no_grad():
        causal = [_policy(k, False).act(obs, mode="greedy") for k in (1, 3)]
        bidir = [_policy(k, True).act(obs, mode="greedy") for k in (1, 3)]
    # the value reads the last prompt position: independent of the block size under a causal prompt
    torch.testing.assert_close(causal[0].values, causal[1].values, atol=1e-6, rtol=0)
    # ... but not when every position sees the (longer) block
    assert not torch.allclose(bidir[0].values, bidir[1].values, atol=1e-6)
    # slot 0 is read at the last prompt position as well, so its logits match under a causal prompt
    torch.testing.assert_close(causal[0].logprobs[:, 0, 0], causal[1].logprobs[:, 0, 0], atol=1e-5, rtol=0)


def test_each_env_is_decoded_as_if_alone(make_obs):
    policy = _policy(4, False)
    obs = make_obs(4, seed=1, wrist=True)
    batch = policy.act(obs, mode="greedy")
    for i in range(4):
        alone = {"images": {k: v[i:i + 1] for k, v in obs["images"].items()}, "proprio": obs["proprio"][i:i + 1],
                 "instruction": obs["instruction"][i:i + 1]}
        single = policy.act(alone, mode="greedy")
        assert torch.equal(single.forward_inputs["action_tokens"], batch.forward_inputs["action_tokens"][i:i + 1])
        torch.testing.assert_close(single.logprobs, batch.logprobs[i:i + 1], atol=1e-5, rtol=0)


def test_proprio_and_wrist_change_the_actions(make_obs):
    policy = _policy(2, False)
    obs = make_obs(3, seed=2, wrist=True)
    base = policy.act(obs, mode="greedy").logprobs
    moved = dict(obs, proprio=obs["proprio"] + 3.0)
    assert not torch.allclose(policy.act(moved, mode="greedy").logprobs, base)
    other_wrist = dict(obs, images={"main": obs["images"]["main"], "wrist": 255 - obs["images"]["wrist"]})
    assert not torch.allclose(policy.act(other_wrist, mode="greedy").logprobs, base)
