"""Every loader path of the published layouts (OpenVLA, OFT tokens, OFT L1 head, RLinf SFT) on tiny folders
built in the tests with the published file names, keys and JSON (published_fixtures.py)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from published_fixtures import FINETUNE_KEY, dataset_statistics, published_folder

from vla_rl.config.core import ConfigError
from vla_rl.config.model import ModelConfig
from vla_rl.models.openvla.published import detect_layout
from vla_rl.models.registry import build_policy, load_policy, saved_family


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("published")
    return {layout: published_folder(root, layout) for layout in ("openvla", "oft-l1", "oft-tokens", "rlinf-sft")}


def _obs(make_obs, n=3, seed=0):
    return make_obs(n, seed=seed, proprio_dim=8, wrist=True)


# ---------------------------------------------------------------------------------------------- references
def _reference_l1_head(sd: dict, grouped: torch.Tensor) -> torch.Tensor:
    """openvla-oft's MLPResNet, written from the state dict's tensors."""
    ln = lambda x, p: F.layer_norm(x, x.shape[-1:], sd[p + ".weight"], sd[p + ".bias"])  # noqa: E731
    lin = lambda x, p: F.linear(x, sd[p + ".weight"], sd[p + ".bias"])  # noqa: E731
    x = F.relu(lin(ln(grouped, "model.layer_norm1"), "model.fc1"))
    i = 0
    while f"model.mlp_resnet_blocks.{i}.ffn.0.weight" in sd:
        block = f"model.mlp_resnet_blocks.{i}.ffn"
        x = x + F.relu(lin(ln(x, block + ".0"), block + ".1"))
        i += 1
    return lin(ln(x, "model.layer_norm2"), "model.fc2")


def _reference_unnormalise(x: np.ndarray, stats: dict) -> np.ndarray:
    """OFT's _unnormalize_actions (BOUNDS_Q99), then LIBERO's normalize_gripper_action(binarize) + invert."""
    low, high = np.array(stats["q01"]), np.array(stats["q99"])
    a = np.where(stats["mask"], 0.5 * (x + 1) * (high - low + 1e-8) + low, x)
    a[..., -1] = -np.sign(2 * a[..., -1] - 1)
    return a


def _reference_proprio(p: np.ndarray, stats: dict) -> np.ndarray:
    low, high = np.array(stats["q01"]), np.array(stats["q99"])
    return np.clip(2 * (p - low) / (high - low + 1e-8) - 1, -1, 1)


# ---------------------------------------------------------------------------------------------- layouts
def test_the_folder_says_which_family_loads_it(folders, tmp_path):
    expected = {"openvla": ("openvla", "openvla"), "oft-l1": ("oft-l1", "openvla_oft"),
                "oft-tokens": ("oft-tokens", "openvla_oft"), "rlinf-sft": ("openvla", "openvla")}
    for layout, (name, family) in expected.items():
        path = str(folders[layout][1])
        assert (detect_layout(path).name, saved_family(path)) == (name, family), layout
        assert type(load_policy(path)).family == family
    folders["oft-l1"][0].save_pretrained(str(tmp_path / "ours"))
    assert detect_layout(str(tmp_path / "ours")).name == "vla-rl" and saved_family(str(tmp_path / "ours")) == "openvla_oft"


def test_oft_l1_folder_acts_as_the_reference_computes(folders, make_obs):
    source, path = folders["oft-l1"]
    policy = load_policy(str(path))
    stats = dataset_statistics()[FINETUNE_KEY]
    # what the folder does not record comes from OFT's LIBERO release; proprio and head from the files
    assert (policy.action_chunk, policy.cameras, policy.meta["proprio_dim"]) == (8, ("main", "wrist"), 8)
    assert policy.action_key == "actions" and not policy.discrete_actions and policy.codec.extras["unnorm_key"] == FINETUNE_KEY
    obs = _obs(make_obs)
    out = policy.act(obs, mode="greedy")
    fi = out.forward_inputs
    np.testing.assert_allclose(fi["proprio"].numpy(), _reference_proprio(obs["proprio"], stats["proprio"]), atol=1e-6)
    with torch.no_grad():
        slots, _ = policy._slots(fi)
        head_sd = {k.removeprefix("module."): v for k, v in
                   torch.load(path / "action_head--150000_checkpoint.pt", weights_only=True).items()}
        normalised = _reference_l1_head(head_sd, slots.reshape(3, 8, -1))
        # every weight (towers, LLM, .pt projector and head) is the source policy's
        torch.testing.assert_close(source.net.action_head(source._slots(fi)[0]), normalised, atol=1e-5, rtol=0)
    torch.testing.assert_close(fi["actions"], normalised, atol=1e-5, rtol=0)
    np.testing.assert_allclose(out.actions, _reference_unnormalise(normalised.numpy().astype(np.float64), stats["action"]),
                               atol=1e-5)


def test_oft_tokens_and_rlinf_sft_folders(folders, make_obs):
    tokens = load_policy(str(folders["oft-tokens"][1]))
    assert tokens.action_key == "action_tokens" and tokens.reads_proprio and tokens.cameras == ("main",)
    # RLinf's SFT folders hold OpenVLA's files only: model.family=openvla_oft reads them as its recipe does
    # (chunk 8, one image, no proprio, the fine-tune's statistics)
    cfg = ModelConfig(family="openvla_oft", pretrained=str(folders["rlinf-sft"][1]))
    rlinf = build_policy(cfg, 7, ("main", "wrist"), 8, seed=0)
    assert (rlinf.action_chunk, rlinf.cameras, rlinf.reads_proprio) == (8, ("main",), False)
    assert rlinf.codec.extras["unnorm_key"] == FINETUNE_KEY and rlinf.net.value_head is not None
    out = rlinf.act(_obs(make_obs, 2))
    assert out.actions.shape == (2, 8, 7) and set(np.unique(out.actions[..., -1])) <= {-1.0, 1.0}
    source = folders["rlinf-sft"][0]
    fi = out.forward_inputs
    with torch.no_grad():
        torch.testing.assert_close(rlinf.readout.score(rlinf._slots(fi)[0], fi["action_tokens"], 1.0)[0],
                                   source.readout.score(source._slots(fi)[0], fi["action_tokens"], 1.0)[0], atol=1e-5, rtol=0)


def test_config_keys_a_published_folder_cannot_honour_are_refused(folders, tmp_path):
    l1, tokens, rlinf = (str(folders[k][1]) for k in ("oft-l1", "oft-tokens", "rlinf-sft"))
    cases = [
        (dict(family="openvla_oft", pretrained=rlinf, use_proprio=True), "no proprio_projector"),
        (dict(family="openvla_oft", pretrained=l1, action_head="tokens"), "action_head--150000_checkpoint.pt"),
        (dict(family="openvla_oft", pretrained=tokens, action_head="l1_regression"), "holds no action_head"),
        (dict(family="openvla", pretrained=l1), "model.family=openvla_oft"),
        (dict(family="openvla_oft", pretrained=tokens, action_scale=0.2), "acts only with the L1 head"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ConfigError, match=message):
            build_policy(ModelConfig(**kwargs), 7, ("main", "wrist"), 8, seed=0)
    with pytest.raises(ConfigError, match=r"reads cameras \['main', 'wrist'\].*add \['wrist'\] to env.cameras"):
        build_policy(ModelConfig(family="openvla_oft", pretrained=l1), 7, ("main",), 8, seed=0)
    with pytest.raises(ConfigError, match=r"reads 8-D proprio but the environment gives 9-D"):
        build_policy(ModelConfig(family="openvla_oft", pretrained=l1), 7, ("main", "wrist"), 9, seed=0)
    # what the config may change: chunk, the camera count (a one-image OFT fine-tune, num_images_in_input 1, looks
    # like the two-image release) and the sampling scale of the L1 head
    chunk4 = build_policy(ModelConfig(family="openvla_oft", pretrained=rlinf, action_chunk=4), 7, ("main",), 8, seed=0)
    one_image = build_policy(ModelConfig(family="openvla_oft", pretrained=l1, use_wrist=False), 7, ("main",), 8, seed=0)
    assert one_image.cameras == ("main",) and load_policy(l1).cameras == ("main", "wrist")
    one_image.save_pretrained(str(tmp_path / "one_image"))  # the save records it, so every loader reads one image
    assert load_policy(str(tmp_path / "one_image")).cameras == ("main",)
    scaled = build_policy(ModelConfig(family="openvla_oft", pretrained=l1, action_scale=0.3, learn_action_scale=False),
                          7, ("main", "wrist"), 8, seed=0)
    assert chunk4.action_chunk == 4
    assert torch.allclose(scaled.net.action_scale().exp(), torch.tensor(0.3)) and not scaled.net.action_scale.log_scale.requires_grad


def test_statistics_come_from_dataset_statistics_json(folders, tmp_path):
    _, path = folders["openvla"]
    policy = load_policy(str(path))
    assert sorted(policy.norm_stats) == [FINETUNE_KEY]  # the file replaces config.json's base mixture, as OpenVLA's eval does
    np.testing.assert_allclose(policy.codec.q99, dataset_statistics()[FINETUNE_KEY]["action"]["q99"])
    with pytest.raises(ConfigError, match=rf"bridge_orig.*{FINETUNE_KEY}.*dataset_statistics.json"):
        build_policy(ModelConfig(pretrained=str(path), unnorm_key="bridge_orig"), 7, ("main",), 8, seed=0)
    # without the file: config.json's statistics, and the error lists those keys
    bare = tmp_path / "bare"
    shutil.copytree(path, bare)
    (bare / "dataset_statistics.json").unlink()
    with pytest.raises(ConfigError, match=r"3 datasets.*bridge_orig.*fractal20220817_data.*kuka"):
        load_policy(str(bare))
    assert sorted(load_policy(str(bare), unnorm_key="kuka").norm_stats) == ["bridge_orig", "fractal20220817_data", "kuka"]


def test_proprio_needs_its_statistics(folders, tmp_path):
    bad = tmp_path / "no_proprio_stats"
    shutil.copytree(folders["oft-l1"][1], bad)
    stats = dataset_statistics()
    del stats[FINETUNE_KEY]["proprio"]
    (bad / "dataset_statistics.json").write_text(json.dumps(stats))
    with pytest.raises(ConfigError, match="proprio q01/q99"):
        load_policy(str(bad))


def test_unsupported_or_ambiguous_component_files_are_refused(folders, tmp_path):
    for extra, message in (("noisy_action_projector--150000_checkpoint.pt", "diffusion"),
                           ("vision_backbone--150000_checkpoint.pt", "FiLM"),
                           ("action_head--50000_checkpoint.pt", "keep exactly one")):
        folder = tmp_path / extra
        shutil.copytree(folders["oft-l1"][1], folder)
        torch.save({}, folder / extra)
        with pytest.raises(ConfigError, match=message):
            load_policy(str(folder))


def test_component_files_of_another_model_are_refused(folders, tmp_path):
    """A projector or head whose shapes do not fit this LLM (another model's file) is named, not a size mismatch."""
    for component, state, message in (
            ("proprio_projector", {"module.fc1.weight": torch.zeros(64, 8), "module.fc2.weight": torch.zeros(64, 64)},
             "projector maps 8 -> 64 -> 64 features, but the LLM width is 128"),
            ("proprio_projector", {"module.weight": torch.zeros(128, 8)}, "not a proprio projector state dict"),
            ("action_head", {"module.model.layer_norm1.weight": torch.zeros(7 * 64),
                             "module.model.fc1.weight": torch.zeros(64, 7 * 64), "module.model.fc2.weight": torch.zeros(7, 64)},
             "the head reads 448 features")):
        folder = tmp_path / component
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(folders["oft-l1"][1], folder)
        torch.save(state, folder / f"{component}--150000_checkpoint.pt")
        with pytest.raises(ConfigError, match=rf"{component}--150000_checkpoint.pt: .*{message}"):
            load_policy(str(folder))
