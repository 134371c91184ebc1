"""OFT's continuous L1 head: its sampling distribution, training through it, LoRA, and what a save writes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch.distributions import Laplace, Normal

from vla_rl.config.model import LoraConfig, ModelConfig
from vla_rl.models.continuous import sample_actions, score_actions
from vla_rl.models.images import OPENVLA_DINO_MEAN, OPENVLA_DINO_STD, SIGLIP_MEAN, SIGLIP_STD, normalise_pixels, to_uint8_chw
from vla_rl.models.registry import build_policy, load_policy

L1 = dict(family="openvla_oft", action_chunk=2, use_proprio=True, use_wrist=True, action_head="l1_regression")


def _l1(seed=0, **extra):
    return build_policy(ModelConfig(**{**L1, **extra}), 7, ("main", "wrist"), 9, seed=seed)


@pytest.mark.parametrize("name,dist", [("gaussian", Normal), ("laplace", Laplace)])
def test_continuous_distribution_matches_torch_and_temperature_scales_it(name, dist):
    mean = torch.randn(20000, 3) * 0.2
    log_scale = torch.log(torch.tensor([0.05, 0.1, 0.3]))
    torch.manual_seed(0)
    actions, logp = sample_actions(name, mean, log_scale, "sample", temperature=1.5)
    reference = dist(mean, log_scale.exp() * 1.5)
    torch.testing.assert_close(logp, reference.log_prob(actions))
    torch.testing.assert_close((actions - mean).std(0), reference.stddev[0], rtol=0.03, atol=0)  # draws have that spread
    rescored, entropy = score_actions(name, mean, log_scale, actions, temperature=1.5)
    torch.testing.assert_close(rescored, logp)
    torch.testing.assert_close(entropy, reference.entropy())
    greedy, greedy_logp = sample_actions(name, mean, log_scale, "greedy", temperature=1.5)
    assert torch.equal(greedy, mean)
    torch.testing.assert_close(greedy_logp, dist(mean, log_scale.exp()).log_prob(mean))  # reported at temperature 1


def test_l1_policy_samples_around_its_regressed_chunk(make_obs):
    policy = _l1(action_scale=0.05)
    obs = make_obs(32, seed=1, wrist=True)
    greedy = policy.act(obs, mode="greedy")
    torch.manual_seed(2)
    sampled = policy.act(obs, mode="sample")
    mean = greedy.forward_inputs["actions"]
    spread = (sampled.forward_inputs["actions"] - mean).std()
    assert abs(float(spread) - 0.05) < 0.01
    # env actions are the codec's mapping of the stored normalised actions (identity statistics here)
    np.testing.assert_allclose(greedy.actions, policy.codec.to_env(mean.numpy()), atol=1e-6)
    assert greedy.forward_inputs["actions"].dtype == torch.float32 and "action_tokens" not in greedy.forward_inputs


def test_l1_head_and_scale_learn_demonstrated_actions(make_obs):
    """Maximum likelihood of demo actions (what SFT does through `action_targets`) moves the head to them."""
    policy = _l1(seed=1, value_head=False)
    obs = make_obs(4, seed=3, wrist=True)
    fi = policy.prepare(obs)
    demo = np.random.default_rng(0).uniform(-0.6, 0.6, size=(4, 2, 7))
    fi["actions"] = policy.action_targets(demo)

    def error() -> float:
        return float(np.abs(policy.act(obs, mode="greedy").forward_inputs["actions"].numpy() - policy.codec.from_env(demo)).mean())

    before = error()
    opt = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(30):
        loss = -policy.evaluate(fi).logprobs.mean()
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < losses[0] - 1.0
    assert policy.net.action_scale.log_scale.grad is not None
    assert policy.net.language_model.lm_head.weight.grad is None  # the L1 head does not read the LM head
    assert error() < 0.85 * before


def test_lora_keeps_the_l1_head_and_scale_fully_trainable():
    policy = _l1(lora=LoraConfig(enabled=True, rank=4, alpha=8.0, target_modules=("all-linear",)))
    trainable = {n for n, p in policy.named_parameters() if p.requires_grad}
    assert any(n.startswith("net.action_head.") for n in trainable) and "net.action_scale.log_scale" in trainable
    assert not any("lora_" in n for n in trainable if n.startswith("net.action_head."))
    assert all("lora_" in n or n.split(".")[1] in ("value_head", "proprio_projector", "action_head", "action_scale")
               for n in trainable)


def _reference_processor(image: np.ndarray, config: dict) -> np.ndarray:
    """PrismaticImageProcessor.apply_transform from its preprocessor_config.json: per tower, torchvision's
    resize of a PIL image (interpolation 3 = bicubic), centre crop, to_tensor, normalize; stacked on channels."""
    towers = []
    for resize, crop, norm in zip(config["tvf_resize_params"], config["tvf_crop_params"], config["tvf_normalize_params"]):
        assert resize["interpolation"] == 3 and crop["output_size"] == resize["size"]
        pil = Image.fromarray(image).resize(tuple(resize["size"][::-1]), Image.Resampling.BICUBIC)
        x = np.asarray(pil, dtype=np.float32).transpose(2, 0, 1) / 255.0
        towers.append((x - np.array(norm["mean"])[:, None, None]) / np.array(norm["std"])[:, None, None])
    return np.concatenate(towers, axis=0)


def test_a_save_writes_what_the_reference_scripts_read(make_obs, tmp_path):
    policy = _l1(seed=2)
    policy.save_pretrained(str(tmp_path))
    names = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "model.safetensors", "dataset_statistics.json", "preprocessor_config.json",
            "action_head--latest_checkpoint.pt", "proprio_projector--latest_checkpoint.pt"} <= names
    state = load_file(str(tmp_path / "model.safetensors"))
    assert not any(k.startswith(("action_head.", "proprio_projector.")) for k in state) and "action_scale.log_scale" in state
    head = torch.load(tmp_path / "action_head--latest_checkpoint.pt", weights_only=True)
    assert {"model.layer_norm1.weight", "model.fc1.weight", "model.mlp_resnet_blocks.1.ffn.1.weight", "model.fc2.bias"} <= set(head)
    assert json.loads((tmp_path / "dataset_statistics.json").read_text()) == policy.norm_stats
    # preprocessor_config.json, applied as OpenVLA's processor does, gives the pixels our towers normalise
    config = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert config["image_resize_strategy"] == "resize-naive" and config["input_sizes"] == [[3, 64, 64]] * 2
    frame = np.random.default_rng(0).integers(0, 256, size=(96, 80, 3), dtype=np.uint8)
    ours = to_uint8_chw(frame[None], policy.image_size, resize=policy.resize)
    ours = torch.cat([normalise_pixels(ours, OPENVLA_DINO_MEAN, OPENVLA_DINO_STD, torch.float32),
                      normalise_pixels(ours, SIGLIP_MEAN, SIGLIP_STD, torch.float32)], dim=1)[0]
    np.testing.assert_allclose(ours.numpy(), _reference_processor(frame, config), atol=1e-5)
    # and our own loader reads it back
    obs = make_obs(2, seed=4, wrist=True)
    np.testing.assert_array_equal(load_policy(str(tmp_path)).act(obs, mode="greedy").actions, policy.act(obs, mode="greedy").actions)


def test_configured_scale_replaces_the_saved_one_and_can_be_fixed(tmp_path):
    _l1(action_scale=0.2).save_pretrained(str(tmp_path))
    assert math.isclose(float(load_policy(str(tmp_path)).net.action_scale().detach().exp()[0]), 0.2, rel_tol=1e-6)
    fixed = build_policy(ModelConfig(**{**L1, "pretrained": str(tmp_path), "action_scale": 0.05, "learn_action_scale": False,
                                        "action_distribution": "laplace"}), 7, ("main", "wrist"), 9, seed=0)
    assert torch.allclose(fixed.net.action_scale().exp(), torch.tensor(0.05)) and not fixed.net.action_scale.log_scale.requires_grad
    assert fixed.readout.distribution == "laplace"


def test_saves_from_before_the_layout_still_load(make_obs, tmp_path):
    """An OFT save that kept the proprio projector in model.safetensors and recorded neither the resize method
    nor the action head: it loads as it was trained (tokens, bilinear resize, raw proprio)."""
    policy = build_policy(ModelConfig(family="openvla_oft", action_chunk=2, use_proprio=True), 7, ("main",), 9, seed=5)
    policy.save_pretrained(str(tmp_path))
    state = load_file(str(tmp_path / "model.safetensors"))
    projector = torch.load(tmp_path / "proprio_projector--latest_checkpoint.pt", weights_only=True)
    state.update({f"proprio_projector.{k}": v for k, v in projector.items()})
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "proprio_projector--latest_checkpoint.pt").unlink()
    config = json.loads((tmp_path / "config.json").read_text())
    for key in ("resize", "action_head", "proprio_normalization"):
        del config["vla_rl"][key]
    (tmp_path / "config.json").write_text(json.dumps(config))
    old = load_policy(str(tmp_path))
    assert old.resize == "bilinear" and old.action_key == "action_tokens"
    obs = make_obs(2, seed=6)
    policy.resize = "bilinear"
    torch.testing.assert_close(old.act(obs, mode="greedy").logprobs, policy.act(obs, mode="greedy").logprobs, atol=1e-6, rtol=0)
