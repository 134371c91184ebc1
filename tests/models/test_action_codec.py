"""The action codec against OpenVLA's bin/token mapping (hand-computed values) and its conventions."""

from __future__ import annotations

import numpy as np
import pytest

from vla_rl.models.action_codec import (
    ActionCodec,
    bin_centres,
    gripper_to_env,
    identity_norm_stats,
    normalised_to_tokens,
    select_norm_stats,
    tokens_to_normalised,
    unnormalise,
)

V = 32000  # Llama-2's base vocabulary, as in OpenVLA


def test_token_ids_match_openvla_by_hand():
    # Edges are -1 + 2k/255, k = 0..255. -1 sits on edge 0 -> index 1; +1 on the last edge -> index 256;
    # 0 lies between edges 127 (-1/255) and 128 (+1/255) -> index 128. Token id = 32000 - index.
    x = np.array([-1.0, 1.0, 0.0, -5.0, 5.0, -1.0 + 2.0 / 255.0 + 1e-9])
    assert normalised_to_tokens(x, V).tolist() == [31999, 31744, 31872, 31999, 31744, 31998]


def test_decoding_uses_bin_centres_with_the_last_index_clipped():
    # id 31872 -> index 128 -> centre 127 = 0; id 31999 -> index 1 -> centre 0 = -1 + 1/255;
    # id 31744 (index 256) and 31745 (index 255) both -> the last centre 254 = 1 - 1/255.
    got = tokens_to_normalised(np.array([31872, 31999, 31744, 31745]), V)
    np.testing.assert_allclose(got, [0.0, -1 + 1 / 255, 1 - 1 / 255, 1 - 1 / 255], atol=1e-12)
    assert bin_centres().shape == (255,)


def test_round_trip_error_is_at_most_one_bin():
    x = np.linspace(-1, 1, 10001)
    err = np.abs(tokens_to_normalised(normalised_to_tokens(x, V), V) - x)
    assert err.max() <= 1 / 255 + 1e-12
    # away from the top edge the decoded centre is within half a bin
    assert err[x < 1 - 2 / 255].max() <= 1 / 255 + 1e-12


def test_unnormalise_with_mask_passes_unmasked_dims_through():
    out = unnormalise(np.array([[-1.0, 0.5], [1.0, -0.25], [0.0, 1.0]]), q01=[0.0, -2.0], q99=[1.0, 2.0], mask=[True, False])
    np.testing.assert_allclose(out, [[0.0, 0.5], [1.0, -0.25], [0.5, 1.0]])


def test_gripper_conversions():
    # OpenVLA datasets: [0, 1] with 1 = open; LIBERO: +1 closes.
    g = np.array([1.0, 0.0, 0.6, 0.5])
    np.testing.assert_allclose(gripper_to_env(g, "unit", "open_positive", "close_positive", False), [-1.0, 1.0, -0.2, 0.0])
    np.testing.assert_allclose(gripper_to_env(g, "unit", "open_positive", "close_positive", True), [-1.0, 1.0, -1.0, 0.0])
    np.testing.assert_allclose(gripper_to_env(g, "unit", "open_positive", "open_positive", False), [1.0, -1.0, 0.2, 0.0])
    s = np.array([0.3, -0.7])
    np.testing.assert_allclose(gripper_to_env(s, "symmetric", None, "close_positive", False), s)


def test_codec_decode_applies_stats_then_gripper():
    stats = {"bridge": {"action": {"q01": [-0.1, 0.0, 0.0], "q99": [0.1, 2.0, 1.0], "mask": [True, True, False]}}}
    codec = ActionCodec.from_norm_stats(V, stats, policy_gripper_range="unit", policy_gripper_convention="open_positive",
                                        env_gripper_convention="close_positive", binarize_gripper=True)
    tokens = normalised_to_tokens(np.array([[0.0, 1.0, 1.0], [-1.0, -1.0, 0.0]]), V)
    got = codec.decode(tokens)
    assert got.dtype == np.float32
    # dim 0: centre 0 -> middle of [-0.1, 0.1]; dim 1: last centre -> 2 * (1 - 1/510); gripper: open -> -1 (close_positive)
    np.testing.assert_allclose(got[0], [0.0, 2.0 * (1 - 1 / 510), -1.0], atol=1e-6)
    # gripper 0 encodes to x=0 -> centre 0 -> 2*0-1 = -1 in open-positive terms -> +1 in close-positive
    np.testing.assert_allclose(got[1], [-0.1 + 0.2 / 510, 2.0 / 510, 1.0], atol=1e-6)


def test_identity_stats_round_trip_env_actions():
    codec = ActionCodec.from_norm_stats(515, {"identity": identity_norm_stats(7)})
    a = np.random.default_rng(0).uniform(-1, 1, size=(64, 7))
    assert np.abs(codec.decode(codec.encode(a)) - a).max() <= 1 / 255 + 1e-6
    ids = codec.encode(a)
    assert ids.min() >= 515 - 256 and ids.max() < 515
    np.testing.assert_array_equal(codec.restricted_to_ids(codec.ids_to_restricted(ids)), ids)


def test_encode_inverts_gripper_and_stats():
    stats = {"d": {"action": {"q01": [0.0, 0.0], "q99": [4.0, 1.0], "mask": [True, False]}}}
    codec = ActionCodec.from_norm_stats(V, stats, policy_gripper_range="unit", policy_gripper_convention="open_positive",
                                        env_gripper_convention="close_positive")
    env_actions = np.array([[1.0, -1.0], [3.0, 1.0]])  # gripper -1 = open in close_positive
    np.testing.assert_allclose(codec.decode(codec.encode(env_actions)), env_actions, atol=4 / 255 + 1e-6)


def test_norm_stats_selection_errors_name_the_fix():
    two = {"a": identity_norm_stats(2), "b": identity_norm_stats(2)}
    with pytest.raises(ValueError, match="unnorm_key"):
        select_norm_stats(two, None)
    with pytest.raises(ValueError, match="choose one of"):
        select_norm_stats(two, "c")
    assert select_norm_stats(two, "b")[0] == "b"
    with pytest.raises(ValueError, match="policy_gripper_range"):
        ActionCodec(V, [0.0], [1.0], [True], policy_gripper_range="bad")
