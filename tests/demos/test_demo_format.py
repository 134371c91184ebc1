"""The demo format: NPZ episodes + a JSON index that validates against its schema and round-trips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vla_rl.demos.format import INDEX_SCHEMA, DemoWriter, Episode, load_demos, validate_index


def _episode(t: int, seed: int) -> Episode:
    rng = np.random.default_rng(seed)
    return Episode(images={"main": rng.integers(0, 256, (t, 8, 8, 3), dtype=np.uint8),
                           "wrist": rng.integers(0, 256, (t, 8, 8, 3), dtype=np.uint8)},
                   proprio=rng.normal(size=(t, 8)).astype(np.float32),
                   actions=rng.uniform(-1, 1, (t, 7)).astype(np.float32),
                   rewards=rng.uniform(0, 1, t).astype(np.float32),
                   success=np.arange(t) == t - 1, instruction=f"task {seed}", reset_id=100 + seed)


META = {"backend": "maniskill", "task": "PushCube-v1", "action_dim": 7, "cameras": ["main", "wrist"],
        "image_size": [8, 8], "proprio_dim": 8, "control_hz": 20.0, "gripper_convention": "open_positive"}


def test_written_episodes_read_back_identically(tmp_path):
    episodes = [_episode(5, 0), _episode(3, 1)]
    writer = DemoWriter(tmp_path / "d", META)
    for e in episodes:
        writer.add(e)
    writer.close()
    demos = load_demos(tmp_path / "d")
    assert len(demos) == 2 and demos.num_steps == 8 and demos.meta["task"] == "PushCube-v1"
    for original, loaded in zip(episodes, demos):
        for cam in ("main", "wrist"):
            np.testing.assert_array_equal(original.images[cam], loaded.images[cam])
        for name in ("proprio", "actions", "rewards", "success"):
            np.testing.assert_array_equal(getattr(original, name), getattr(loaded, name))
        assert (loaded.instruction, loaded.reset_id, loaded.succeeded) == (original.instruction, original.reset_id, True)


def test_index_validates_against_the_written_json_schema(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    writer = DemoWriter(tmp_path / "d", META)
    writer.add(_episode(4, 2))
    writer.close()
    index = json.loads((tmp_path / "d" / "index.json").read_text())
    schema = json.loads((tmp_path / "d" / "index.schema.json").read_text())
    assert schema == INDEX_SCHEMA
    jsonschema.validate(index, schema)
    broken = {**index, "episodes": [{"file": "x.npz"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    assert any("misses" in e for e in validate_index(broken))


def test_refuses_mismatched_lengths_and_existing_folders(tmp_path):
    good = _episode(4, 3)
    with pytest.raises(ValueError, match="mismatched"):
        Episode(images=good.images, proprio=good.proprio[:3], actions=good.actions, rewards=good.rewards,
                success=good.success, instruction="x", reset_id=0)
    writer = DemoWriter(tmp_path / "d", META)
    writer.add(good)
    writer.close()
    with pytest.raises(FileExistsError, match="already holds"):
        DemoWriter(tmp_path / "d", META)
    with pytest.raises(FileNotFoundError, match="vla-rl demos"):
        load_demos(tmp_path / "nothing")


def test_scripted_demos_from_the_simulator_round_trip(push_demos):
    demos = load_demos(push_demos)
    meta = demos.meta
    assert (meta["backend"], meta["task"], meta["control_mode"]) == ("maniskill", "PushCube-v1", "pd_ee_delta_pose")
    assert meta["image_size"] == [64, 64] and meta["cameras"] == ["main"] and meta["gripper_convention"] == "open_positive"
    assert len(demos) == 4 and all(e["success"] for e in demos.entries)
    assert sorted(e["reset_id"] for e in demos.entries)[0] >= 700000
    for episode in demos:
        t = len(episode)
        assert episode.images["main"].shape == (t, 64, 64, 3) and episode.images["main"].dtype == np.uint8
        assert episode.actions.shape == (t, 7) and np.all(np.abs(episode.actions) <= 1.0)
        assert episode.succeeded and episode.instruction.startswith("push the blue cube")
