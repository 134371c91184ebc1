"""The published OpenVLA checkpoint layout: names, timm-style semantics, loading without our config section."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from vla_rl.config.model import ModelConfig
from vla_rl.models.images import OPENVLA_DINO_MEAN, OPENVLA_DINO_STD, SIGLIP_MEAN, SIGLIP_STD, normalise_pixels
from vla_rl.models.registry import build_policy, load_policy


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    policy = build_policy(ModelConfig(size="tiny"), 7, ("main",), 9, seed=5)
    path = tmp_path_factory.mktemp("openvla_tiny")
    policy.save_pretrained(str(path))
    return policy, path


def _expected_vision_keys(prefix: str, blocks: int, dino: bool) -> set[str]:
    keys = {f"{prefix}.pos_embed", f"{prefix}.patch_embed.proj.weight", f"{prefix}.patch_embed.proj.bias"}
    if dino:
        keys |= {f"{prefix}.cls_token", f"{prefix}.reg_token"}
    for i in range(blocks):
        b = f"{prefix}.blocks.{i}"
        for mod in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"):
            keys |= {f"{b}.{mod}.weight", f"{b}.{mod}.bias"}
        if dino:
            keys |= {f"{b}.ls1.scale_factor", f"{b}.ls2.scale_factor"}
    return keys


def test_saved_names_and_config_follow_the_published_layout(saved):
    policy, path = saved
    state = load_file(str(path / "model.safetensors"))
    vision = {k for k in state if k.startswith("vision_backbone.")}
    expected = _expected_vision_keys("vision_backbone.featurizer", 2, True) | _expected_vision_keys(
        "vision_backbone.fused_featurizer", 2, False)
    assert vision == expected
    assert {"projector.fc1.weight", "projector.fc2.weight", "projector.fc3.weight", "projector.fc3.bias",
            "language_model.model.embed_tokens.weight", "language_model.lm_head.weight",
            "language_model.model.layers.1.self_attn.q_proj.weight", "language_model.model.norm.weight"} <= set(state)
    assert state["vision_backbone.featurizer.blocks.0.attn.qkv.weight"].shape == (3 * 64, 64)
    assert state["vision_backbone.featurizer.pos_embed"].shape == (1, 16, 64)  # patches only (no class position)
    config = json.loads((path / "config.json").read_text())
    assert config["model_type"] == "openvla" and config["n_action_bins"] == 256
    assert config["vision_backbone_id"] == "vla-rl-tiny-dinosiglip-64px"
    assert config["text_config"]["vocab_size"] == 576 and config["pad_token_id"] == 515
    assert config["norm_stats"]["identity"]["action"]["q01"] == [-1.0] * 7


def _timm_vit(sd, prefix, x, heads, n_prefix, act):
    """A timm-style ViT written from the published tensors: patch conv, pos, [cls, reg], pre-norm blocks."""
    w = sd[prefix + "patch_embed.proj.weight"]
    x = F.conv2d(x, w, sd[prefix + "patch_embed.proj.bias"], stride=w.shape[-1]).flatten(2).transpose(1, 2)
    x = x + sd[prefix + "pos_embed"]
    if n_prefix:
        n = x.shape[0]
        x = torch.cat([sd[prefix + "cls_token"].expand(n, -1, -1), sd[prefix + "reg_token"].expand(n, -1, -1), x], 1)
    i = 0
    while f"{prefix}blocks.{i}.norm1.weight" in sd:
        b = f"{prefix}blocks.{i}."
        dim = x.shape[-1]
        h = F.layer_norm(x, (dim,), sd[b + "norm1.weight"], sd[b + "norm1.bias"], 1e-6)
        q, k, v = F.linear(h, sd[b + "attn.qkv.weight"], sd[b + "attn.qkv.bias"]).chunk(3, dim=-1)
        split = lambda t: t.view(t.shape[0], t.shape[1], heads, dim // heads).transpose(1, 2)  # noqa: E731
        att = torch.softmax(split(q) @ split(k).transpose(-1, -2) / math.sqrt(dim // heads), dim=-1) @ split(v)
        att = F.linear(att.transpose(1, 2).reshape(x.shape), sd[b + "attn.proj.weight"], sd[b + "attn.proj.bias"])
        x = x + att * sd.get(b + "ls1.scale_factor", 1.0)
        h = F.layer_norm(x, (dim,), sd[b + "norm2.weight"], sd[b + "norm2.bias"], 1e-6)
        mlp = F.linear(act(F.linear(h, sd[b + "mlp.fc1.weight"], sd[b + "mlp.fc1.bias"])), sd[b + "mlp.fc2.weight"],
                       sd[b + "mlp.fc2.bias"])
        x = x + mlp * sd.get(b + "ls2.scale_factor", 1.0)
        i += 1
    return x[:, n_prefix:]


def test_published_tensors_mean_what_timm_means(saved):
    """Both published towers are timm 0.9 ViTs with the exact (erf) GELU: timm's vit_so400m_patch14_siglip_224 and
    vit_large_patch14_reg4_dinov2 pass no act_layer, so nn.GELU. The tolerance is tight enough to tell the
    tanh approximation (transformers' SigLIP default) apart, and the test checks that it does."""
    policy, path = saved
    sd = load_file(str(path / "model.safetensors"))
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    dino = _timm_vit(sd, "vision_backbone.featurizer.", normalise_pixels(images, OPENVLA_DINO_MEAN, OPENVLA_DINO_STD,
                     torch.float32), heads=2, n_prefix=5, act=F.gelu)
    siglip_pixels = normalise_pixels(images, SIGLIP_MEAN, SIGLIP_STD, torch.float32)
    sig = _timm_vit(sd, "vision_backbone.fused_featurizer.", siglip_pixels, heads=2, n_prefix=0, act=F.gelu)
    with torch.no_grad():
        ours = policy.net.vision_backbone(images)
    torch.testing.assert_close(ours, torch.cat([dino, sig], dim=-1), atol=1e-4, rtol=1e-4)
    tanh = _timm_vit(sd, "vision_backbone.fused_featurizer.", siglip_pixels, heads=2, n_prefix=0,
                     act=lambda t: F.gelu(t, approximate="tanh"))
    assert (ours[..., 64:] - tanh).abs().max() > 1e-4  # the tanh GELU would fail the check above


def test_loads_a_published_style_checkpoint_without_our_section(saved, tmp_path, make_obs):
    policy, path = saved
    config = json.loads((path / "config.json").read_text())
    del config["vla_rl"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((path / name).read_bytes())
    state = {k: v for k, v in load_file(str(path / "model.safetensors")).items() if not k.startswith("value_head.")}
    # what a real checkpoint also carries and OpenVLA never reads: a last block, final norms, SigLIP's pool head
    extra = {"vision_backbone.featurizer.blocks.2.norm1.weight": torch.ones(64),
             "vision_backbone.featurizer.norm.weight": torch.ones(64),
             "vision_backbone.fused_featurizer.attn_pool.latent": torch.zeros(1, 1, 64)}
    state.update(extra)
    keys = sorted(state)
    shards = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2], "model-00002-of-00002.safetensors": keys[len(keys) // 2:]}
    for shard, names in shards.items():
        save_file({k: state[k].contiguous() for k in names}, str(tmp_path / shard))
    index = {"weight_map": {k: shard for shard, names in shards.items() for k in names}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))

    loaded = load_policy(str(tmp_path))
    assert loaded.net.value_head is None
    assert loaded.codec.policy_gripper_range == "unit" and loaded.codec.binarize_gripper  # OpenVLA's dataset convention
    obs = make_obs(3, seed=9)
    a, b = policy.act(obs, mode="greedy"), loaded.act(obs, mode="greedy")
    assert torch.equal(a.forward_inputs["action_tokens"], b.forward_inputs["action_tokens"])
    torch.testing.assert_close(a.logprobs, b.logprobs, atol=1e-6, rtol=0)

    out = tmp_path / "resaved"
    loaded.save_pretrained(str(out))
    resaved = load_file(str(out / "model.safetensors"))
    for k, v in extra.items():
        assert torch.equal(resaved[k], v)
    with_value = build_policy(ModelConfig(size="tiny", pretrained=str(tmp_path)), 7, ("main",), 9, seed=0)
    assert with_value.net.value_head is not None and with_value.act(obs).values.shape == (3,)
    assert with_value.codec.policy_gripper_range == "unit"  # config left at None keeps the checkpoint's choice
    overridden = build_policy(ModelConfig(pretrained=str(tmp_path), policy_gripper_range="symmetric",
                                          binarize_gripper=False), 7, ("main",), 9, seed=0, gripper_convention="open_positive")
    assert overridden.codec.policy_gripper_range == "symmetric" and not overridden.codec.binarize_gripper
    assert overridden.codec.env_gripper_convention == "open_positive"


def test_unknown_vision_weights_are_refused(saved, tmp_path):
    _, path = saved
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((path / name).read_bytes())
    state = load_file(str(path / "model.safetensors"))
    state["vision_backbone.featurizer.mystery.weight"] = torch.zeros(3)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="mystery"):
        load_policy(str(tmp_path))


def test_codec_of_a_published_checkpoint_decodes_like_openvla(saved):
    policy, _ = saved
    # OpenVLA: unit-range gripper, 1 = open; LIBERO wants +1 = close, binarised.
    from vla_rl.models.action_codec import ActionCodec

    codec = ActionCodec.from_norm_stats(515, {"libero": {"action": {"q01": [-1.0] * 6 + [0.0], "q99": [1.0] * 7,
                                                                     "mask": [True] * 6 + [False]}}},
                                        policy_gripper_range="unit", policy_gripper_convention="open_positive",
                                        env_gripper_convention="close_positive", binarize_gripper=True)
    tokens = codec.encode(np.array([[0.0] * 6 + [-1.0], [0.0] * 6 + [1.0]]))  # env: open, close
    np.testing.assert_array_equal(codec.decode(tokens)[:, -1], [-1.0, 1.0])


def test_7b_preset_has_the_published_names_and_shapes():
    """Built on the meta device (no memory): 939 tensors; with the 43 never-read vision tensors (DINOv2
    block 23 + norm, SigLIP block 26 + norm + attention pool) that is the 982 keys of openvla-7b's index."""
    from vla_rl.models.openvla.layout import to_published_state
    from vla_rl.models.openvla.network import OpenVLANetwork
    from vla_rl.models.openvla.spec import SIZES, dino_config, llama_config, siglip_config

    size = SIZES["7b"]
    dino, siglip = dino_config(size), siglip_config(size)
    with torch.device("meta"):
        net = OpenVLANetwork(dino, siglip, llama_config(size, 32064, 32000, 1, 2, 2048), 32000 - 256, None)
    state = to_published_state(net.state_dict(), dino, siglip)
    assert len(state) == 939
    shapes = {
        "vision_backbone.featurizer.blocks.22.attn.qkv.weight": (3072, 1024),
        "vision_backbone.featurizer.blocks.22.ls2.scale_factor": (1024,),
        "vision_backbone.featurizer.pos_embed": (1, 256, 1024),
        "vision_backbone.featurizer.reg_token": (1, 4, 1024),
        "vision_backbone.fused_featurizer.pos_embed": (1, 256, 1152),
        "vision_backbone.fused_featurizer.blocks.25.mlp.fc1.weight": (4304, 1152),
        "projector.fc1.weight": (8704, 2176),
        "projector.fc3.weight": (4096, 4096),
        "language_model.model.embed_tokens.weight": (32064, 4096),
        "language_model.model.layers.31.mlp.down_proj.weight": (4096, 11008),
    }
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key


def test_a_7b_save_names_the_published_timm_towers():
    """OpenVLA's own configuration class builds its towers from these keys (openvla-7b's config.json has them)."""
    from vla_rl.models.openvla.layout import published_config

    seven = published_config({"vocab_size": 32064}, {}, {"size": "7b", "image_size": 224}, 32000, "bfloat16")
    assert seven["vision_backbone_id"] == "dinosiglip-vit-so-224px" and seven["llm_backbone_id"] == "llama2-7b-pure"
    assert seven["timm_model_ids"] == ["vit_large_patch14_reg4_dinov2.lvd142m", "vit_so400m_patch14_siglip_224"]
    assert seven["timm_override_act_layers"] == [None, None] and seven["hf_llm_id"] == "meta-llama/Llama-2-7b-hf"
    tiny = published_config({"vocab_size": 576}, {}, {"size": "tiny", "image_size": 64}, 515, "float32")
    assert "timm_model_ids" not in tiny  # OpenVLA's code cannot build our tiny towers; no claim that it can
