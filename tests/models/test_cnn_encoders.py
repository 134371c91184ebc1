"""The CNN family's image encoders: the spatial soft-argmax, the keypoint preset, old checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vla_rl.config.model import ModelConfig
from vla_rl.models.checkpoint_io import read_weights, write_weights
from vla_rl.models.cnn.encoders import CNN_ENCODERS, KeypointEncoder, SpatialSoftArgmax
from vla_rl.models.registry import build_policy, load_policy


def test_soft_argmax_finds_the_peak_of_each_map():
    layer = SpatialSoftArgmax(9, 5)
    with torch.no_grad():
        layer.log_temperature.fill_(np.log(0.01))  # sharp: the expectation sits on the maximum
    maps = torch.zeros(2, 3, 9, 5)
    peaks = [[(0, 0), (8, 4), (4, 2)], [(2, 1), (6, 3), (8, 0)]]  # (row, col) per map
    for n, row in enumerate(peaks):
        for k, (r, c) in enumerate(row):
            maps[n, k, r, c] = 1.0
    xy = layer(maps).view(2, 3, 2)
    for n, row in enumerate(peaks):
        for k, (r, c) in enumerate(row):
            assert xy[n, k, 0].item() == pytest.approx(-1 + 2 * c / 4, abs=1e-4)  # x follows the column
            assert xy[n, k, 1].item() == pytest.approx(-1 + 2 * r / 8, abs=1e-4)  # y follows the row


def test_keypoint_features_follow_a_moving_object():
    """A bright square moved across the image moves the keypoints' expected positions with it."""
    torch.manual_seed(0)
    encoder = KeypointEncoder(64, (8, 16, 16), 32)
    with torch.no_grad():
        encoder.soft_argmax.log_temperature.fill_(np.log(0.02))  # random weights give flat maps; sharpen them

    def keypoints(col: int) -> torch.Tensor:
        image = torch.full((1, 3, 64, 64), -1.0)
        image[..., 28:36, col:col + 8] = 3.0
        return encoder.soft_argmax(encoder.convs(image)).view(16, 2)

    with torch.no_grad():
        left, right = keypoints(8), keypoints(48)
    moved_x = (right[:, 0] - left[:, 0]).mean().item()
    moved_y = (right[:, 1] - left[:, 1]).abs().mean().item()
    assert moved_x > 0.05 and moved_x > 3 * moved_y


def test_keypoint_preset_acts_saves_and_loads(make_obs, tmp_path):
    cfg = ModelConfig(family="cnn", size="tiny-keypoints", use_proprio=True)
    policy = build_policy(cfg, 7, ("main",), 9, seed=0)
    assert isinstance(policy.net.encoder, KeypointEncoder)
    policy.save_pretrained(str(tmp_path))
    loaded = load_policy(str(tmp_path))
    obs = make_obs(3, proprio_dim=9)
    a, b = policy.act(obs, mode="greedy"), loaded.act(obs, mode="greedy")
    np.testing.assert_array_equal(a.actions, b.actions)


def test_checkpoints_with_the_old_flatten_layer_names_still_load(make_obs, tmp_path):
    policy = build_policy(ModelConfig(family="cnn"), 7, ("main",), 9, seed=0)
    policy.save_pretrained(str(tmp_path))
    renamed = {}
    for key, value in read_weights(str(tmp_path)).items():  # the names written before encoders were pluggable
        key = key.replace("encoder.proj.", "image_proj.").replace("encoder.convs.", "encoder.")
        renamed[key] = value
    assert "image_proj.weight" in renamed and "encoder.0.weight" in renamed
    write_weights(str(tmp_path), renamed)
    loaded = load_policy(str(tmp_path))
    obs = make_obs(2, proprio_dim=9)
    np.testing.assert_array_equal(policy.act(obs, mode="greedy").actions, loaded.act(obs, mode="greedy").actions)


def test_an_unknown_encoder_names_the_registered_ones():
    with pytest.raises(KeyError, match="flatten, keypoints"):
        CNN_ENCODERS.get("resnet")
