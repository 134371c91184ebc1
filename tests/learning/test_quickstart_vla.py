"""configs/quickstart_vla.yaml: the quickstart with the openvla_oft family keeps the quickstart's task, demos and
evaluation, and its `micro` policy has the family's parts (two ViT towers, a causal LM, a language prompt, 256-bin
action tokens, a chunk decoded in one pass)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from vla_rl.config.loader import load_config
from vla_rl.models.registry import build_policy


def test_quickstart_vla_is_the_quickstart_with_an_oft_policy():
    vla, cnn = load_config("quickstart_vla"), load_config("quickstart")
    assert vla.env == cnn.env and vla.warmstart == cnn.warmstart
    assert (vla.runner.eval_episodes, vla.runner.eval_seed) == (cnn.runner.eval_episodes, cnn.runner.eval_seed)
    # GRPO as the CNN's, with a gentler update (chosen on validation seeds, docs/learning.md)
    assert replace(vla.algorithm, update_epochs=cnn.algorithm.update_epochs,
                   clip_ratio_high=cnn.algorithm.clip_ratio_high) == cnn.algorithm
    assert (vla.algorithm.update_epochs, vla.algorithm.clip_ratio_high, vla.runner.iterations) == (2, 0.2, 80)
    assert vla.placement.train_threads == 2 and vla.placement.torch_threads == cnn.placement.torch_threads == 1
    assert vla.model.family == "openvla_oft" and vla.model.action_chunk == 2
    # the same 30 env steps per episode: 15 policy calls of 2-action chunks
    assert vla.rollout.steps_per_iteration * vla.model.action_chunk == cnn.rollout.steps_per_iteration


def test_micro_oft_policy_decodes_a_chunk_of_action_tokens_in_one_pass():
    config = load_config("quickstart_vla")
    policy = build_policy(config.model, action_dim=7, cameras=("main",), proprio_dim=9, seed=0,
                          gripper_convention="open_positive")
    net = policy.net
    names = {type(m).__name__ for m in net.modules()}
    assert {"Dinov2WithRegistersModel", "SiglipVisionTransformer"} & names or any("Dinov2" in n for n in names)
    assert any("Siglip" in n for n in names) and any("Llama" in n for n in names)
    rng = np.random.default_rng(0)
    obs = {"images": {"main": rng.integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)},
           "proprio": rng.normal(size=(3, 9)).astype(np.float32),
           "instruction": ["push the cube to the goal region in front of it"] * 3}
    out = policy.act(obs, mode="sample")
    assert out.actions.shape == (3, 2, 7)
    tokens = out.forward_inputs["action_tokens"]
    assert tokens.shape == (3, 2, 7) and int(tokens.max()) - int(tokens.min()) < 256  # ids of the 256 action bins
    assert out.forward_inputs["input_ids"].shape[0] == 3  # the language prompt is part of the input
    again = policy.evaluate(out.forward_inputs)
    np.testing.assert_allclose(again.logprobs.detach().numpy(), out.logprobs.numpy(), atol=1e-5)


def test_micro_oft_action_slots_are_told_apart():
    """OFT's action slots enter the LM as zero vectors, so in the first block their queries are zero and every slot
    attends uniformly to the same keys; only from the second block on do positions separate them. With one LM block,
    13 of a 2 x 7 chunk's 14 slot states were the same vector (one shared token distribution): `micro` needs two."""
    config = load_config("quickstart_vla")
    policy = build_policy(config.model, action_dim=7, cameras=("main",), proprio_dim=9, seed=0,
                          gripper_convention="open_positive")
    rng = np.random.default_rng(0)
    obs = {"images": {"main": rng.integers(0, 255, (2, 64, 64, 3), dtype=np.uint8)},
           "proprio": rng.normal(size=(2, 9)).astype(np.float32),
           "instruction": ["push the cube to the goal region in front of it"] * 2}
    with torch.no_grad():
        slots, _ = policy._slots(policy.prepare(obs))
    assert slots.shape[:2] == (2, 14)
    distance = torch.cdist(slots[0], slots[0])
    off_diagonal = distance[~torch.eye(14, dtype=torch.bool)]
    assert float(off_diagonal.min()) > 1e-3, "two action slots have the same hidden state"
