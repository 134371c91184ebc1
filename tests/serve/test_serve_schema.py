"""Observation schema: request keys -> platform observation, refusals that name the fix, JSON round trip."""

import json

import numpy as np
import pytest

from vla_rl.config.core import ConfigError
from vla_rl.serve.schema import (OPENPI_LAYOUTS, CameraField, ObservationSchema, RequestError, StateField, load_schema, request_from_obs,
                                 save_schema, schema_for_env, stack_observations, validate_request)


def _request(**changes):
    rng = np.random.default_rng(0)
    request = {"observation/image": rng.integers(0, 256, (8, 10, 3), dtype=np.uint8),
               "observation/wrist_image": rng.integers(0, 256, (8, 10, 3), dtype=np.uint8),
               "observation/state": rng.standard_normal(4), "prompt": "open the drawer"}
    request.update(changes)
    return {k: v for k, v in request.items() if v is not None}


def test_default_schema_maps_libero_keys_to_the_platform_observation():
    request = _request()
    obs = validate_request(request, ObservationSchema())
    np.testing.assert_array_equal(obs.images["main"], request["observation/image"])
    np.testing.assert_array_equal(obs.images["wrist"], request["observation/wrist_image"])
    assert obs.proprio.dtype == np.float32 and obs.proprio.shape == (4,)
    np.testing.assert_allclose(obs.proprio, request["observation/state"], rtol=1e-6)
    batch = stack_observations([obs, obs])
    assert batch["images"]["main"].shape == (2, 8, 10, 3) and batch["images"]["main"].dtype == np.uint8
    assert batch["proprio"].shape == (2, 4) and batch["proprio"].dtype == np.float32
    assert batch["instruction"] == ["open the drawer"] * 2


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"observation/image": None}, "missing image 'observation/image'"),
        ({"observation/image": np.zeros((8, 10, 3), np.float32)}, "observation/image has dtype float32"),
        ({"observation/image": np.zeros((3, 8, 10), np.uint8)}, "transpose"),
        ({"observation/image": np.zeros((8, 10), np.uint8)}, "shape"),
        ({"observation/image": [[1, 2, 3]]}, "must be a numpy uint8 array"),
        ({"observation/state": np.array([0.0, np.nan, 1.0, np.inf])}, r"non-finite .* \[1, 3\]"),
        ({"observation/state": np.array([1e300, 0.0, 0.0, 0.0])}, "non-finite"),
        ({"observation/state": np.zeros((2, 2))}, "1-D vector"),
        ({"observation/state": np.array(["a", "b"])}, "dtype <U1"),
        ({"prompt": None}, "missing 'prompt'"),
        ({"prompt": 7}, "'prompt' must be a string"),
        ({"prompt": "x" * 2001}, "2001 characters"),
        ({"extra/thing": 1}, r"unknown request key\(s\) \['extra/thing'\]"),
    ],
)
def test_bad_requests_are_refused_with_the_key_named(changes, words):
    with pytest.raises(RequestError, match=words):
        validate_request(_request(**changes), ObservationSchema())


def test_non_map_requests_and_non_string_keys_are_refused():
    with pytest.raises(RequestError, match="msgpack map"):
        validate_request([1, 2], ObservationSchema())
    with pytest.raises(RequestError, match="keys must be strings"):
        validate_request({1: 2}, ObservationSchema())


def test_declared_sizes_and_required_state_are_enforced():
    schema = ObservationSchema(state=(StateField("observation/state", 4),), state_required=True, image_size=(8, 10))
    validate_request(_request(), schema)
    with pytest.raises(RequestError, match="length 3; this checkpoint expects 4"):
        validate_request(_request(**{"observation/state": np.zeros(3)}), schema)
    with pytest.raises(RequestError, match="reads the robot state"):
        validate_request(_request(**{"observation/state": None}), schema)
    with pytest.raises(RequestError, match="expects 8x10"):
        validate_request(_request(**{"observation/image": np.zeros((10, 8, 3), np.uint8)}), schema)


def test_multi_part_state_round_trips_through_request_from_obs():
    """DROID-style keys: joint positions and gripper concatenated into proprio, split again for the request."""
    schema = ObservationSchema(
        cameras=(CameraField("observation/exterior_image_1_left", "main"), CameraField("observation/wrist_image_left", "wrist")),
        state=(StateField("observation/joint_position", 7), StateField("observation/gripper_position", 1)),
        state_required=True, prompt_key="prompt", ignored_keys=("episode_id",))
    rng = np.random.default_rng(1)
    obs = {"images": {"main": rng.integers(0, 256, (2, 6, 6, 3), dtype=np.uint8),
                      "wrist": rng.integers(0, 256, (2, 6, 6, 3), dtype=np.uint8)},
           "proprio": rng.standard_normal((2, 8)).astype(np.float32), "instruction": ["a", "b"]}
    request = request_from_obs(obs, 1, schema)
    assert request["observation/joint_position"].shape == (7,) and request["observation/gripper_position"].shape == (1,)
    request["episode_id"] = 17  # declared as ignored
    back = validate_request(request, schema)
    np.testing.assert_array_equal(back.proprio, obs["proprio"][1])
    np.testing.assert_array_equal(back.images["wrist"], obs["images"]["wrist"][1])
    assert back.instruction == "b"
    with pytest.raises(RequestError, match=r"missing state key\(s\) \['observation/gripper_position'\]"):
        validate_request({k: v for k, v in request.items() if k != "observation/gripper_position"}, schema)


def test_schema_json_round_trip_and_strict_loading(tmp_path):
    schema = schema_for_env(("main", "wrist"), 8, reads_proprio=True)
    assert [c.key for c in schema.cameras] == ["observation/image", "observation/wrist_image"]
    save_schema(schema, tmp_path / "s.json")
    assert load_schema(tmp_path / "s.json") == schema
    data = json.loads((tmp_path / "s.json").read_text())
    data["camera"] = []
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="unknown key camera"):
        load_schema(tmp_path / "bad.json")


def test_inconsistent_schemas_are_refused():
    with pytest.raises(ValueError, match="twice"):
        ObservationSchema(cameras=(CameraField("prompt", "main"),))
    with pytest.raises(ValueError, match="one key per camera"):
        ObservationSchema(cameras=(CameraField("a", "main"), CameraField("b", "main")))
    with pytest.raises(ValueError, match="no required camera"):
        ObservationSchema(cameras=(CameraField("a", "main", required=False),))


def test_keys_of_openpi_layouts_the_policy_does_not_read_are_dropped():
    """A main-camera checkpoint behind the LIBERO client (which also sends the wrist image), and the keys of
    openpi's DROID and ALOHA layouts; any other unknown key stays an error."""
    schema = schema_for_env(("main",), 4)
    assert "observation/wrist_image" in schema.dropped_keys and "observation/image" not in schema.dropped_keys
    assert set(schema.dropped_keys) == {k for keys in OPENPI_LAYOUTS.values() for k in keys} - set(schema.read_keys)
    rng = np.random.default_rng(2)
    extra = {"observation/exterior_image_1_left": rng.integers(0, 256, (8, 10, 3), dtype=np.uint8),
             "observation/joint_position": rng.random(7), "state": np.ones(14),
             "images": {"cam_high": rng.integers(0, 256, (3, 8, 10), dtype=np.uint8)}}
    request = _request(**extra)
    obs = validate_request(request, schema)
    assert list(obs.images) == ["main"]  # the wrist image never reaches the policy
    np.testing.assert_array_equal(obs.images["main"], request["observation/image"])
    np.testing.assert_allclose(obs.proprio, request["observation/state"], rtol=1e-6)
    with pytest.raises(RequestError, match=r"unknown request key\(s\) \['observation/wrist_img'\].*drops"):
        validate_request(_request(**{"observation/wrist_img": request["observation/wrist_image"]}), schema)
    strict = schema_for_env(("main",), 4)
    strict.drop_openpi_layout_keys = False
    assert strict.dropped_keys == []
    with pytest.raises(RequestError, match=r"unknown request key\(s\) \['observation/wrist_image'\]"):
        validate_request(_request(), strict)
    both = schema_for_env(("main", "wrist"), 4)
    assert "observation/wrist_image" not in both.dropped_keys  # read, so validated: a bad wrist image is refused
    with pytest.raises(RequestError, match="observation/wrist_image has dtype float32"):
        validate_request(_request(**{"observation/wrist_image": np.zeros((8, 10, 3), np.float32)}), both)
