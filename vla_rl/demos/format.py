"""The on-disk demonstration format: one NPZ per episode plus a JSON index with a schema.

Layout of a demo folder:

    index.json              what the demos are (task, action space, cameras, ...) and one entry per
                            episode; validated against INDEX_SCHEMA (also written as index.schema.json)
    index.schema.json       the JSON Schema (draft 2020-12) of index.json
    episodes/000000.npz     one episode of T steps:
        image_<camera>      uint8 (T, H, W, 3)   the observation before each action, per camera
        proprio             float32 (T, P)       robot state before each action
        actions             float32 (T, A)       the action taken, in the environment's action space
        rewards             float32 (T,)         reward of each step (the env's reward mode)
        success             bool (T,)            task success after each step

Images are stored at the environment's render size; a run whose env renders at the policy's
resolution (the recipes do) stores exactly what the policy sees. The instruction and reset id of an
episode are in its index entry. Writing is atomic per file; the index is written last, so a folder
without index.json is an unfinished generation.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

FORMAT = "vla-rl-demos"
VERSION = 1
INDEX = "index.json"
SCHEMA_FILE = "index.schema.json"

INDEX_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "vla-rl demonstration index",
    "type": "object",
    "required": ["format", "version", "backend", "task", "action_dim", "cameras", "image_size", "proprio_dim",
                 "control_hz", "gripper_convention", "episodes"],
    "properties": {
        "format": {"const": FORMAT},
        "version": {"const": VERSION},
        "backend": {"type": "string", "description": "registered env backend, e.g. maniskill"},
        "task": {"type": "string", "description": "task id inside the backend"},
        "control_mode": {"type": "string", "description": "the simulator's controller, e.g. pd_ee_delta_pose"},
        "action_dim": {"type": "integer", "minimum": 1},
        "action_low": {"type": "array", "items": {"type": "number"}},
        "action_high": {"type": "array", "items": {"type": "number"}},
        "gripper_convention": {"enum": ["open_positive", "close_positive"]},
        "cameras": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "image_size": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2,
                       "description": "(height, width) of every stored image"},
        "proprio_dim": {"type": "integer", "minimum": 0},
        "control_hz": {"type": "number"},
        "reward_mode": {"type": "string"},
        "source": {"type": "string", "description": "who acted: scripted controller name, or 'policy:<path>'"},
        "env_extras": {"type": "object"},
        "action_noise": {"type": "number", "description": "std of the noise on executed xyz actions (DART)"},
        "first_reset_id": {"type": "integer"},
        "attempts": {"type": "integer", "description": "episodes the demonstrator ran (failed ones are not stored)"},
        "failed_reset_ids": {"type": "array", "items": {"type": "integer"}},
        "episodes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["file", "length", "instruction", "reset_id", "success"],
                "properties": {
                    "file": {"type": "string", "description": "NPZ path relative to the index"},
                    "length": {"type": "integer", "minimum": 1},
                    "instruction": {"type": "string"},
                    "reset_id": {"type": "integer", "minimum": 0},
                    "success": {"type": "boolean"},
                    "return": {"type": "number"},
                },
            },
        },
    },
}


@dataclass
class Episode:
    """One demonstration: T observations and the T actions taken from them."""

    images: dict[str, np.ndarray]
    """Camera -> uint8 (T, H, W, 3)."""
    proprio: np.ndarray
    """float32 (T, P)."""
    actions: np.ndarray
    """float32 (T, A) in the environment's action space."""
    rewards: np.ndarray
    """float32 (T,)."""
    success: np.ndarray
    """bool (T,): task success after each step."""
    instruction: str
    reset_id: int

    def __post_init__(self) -> None:
        t = len(self.actions)
        lengths = {"proprio": len(self.proprio), "rewards": len(self.rewards), "success": len(self.success),
                   **{f"image_{c}": len(v) for c, v in self.images.items()}}
        wrong = {k: n for k, n in lengths.items() if n != t}
        if t == 0 or wrong:
            raise ValueError(f"an episode needs T >= 1 steps in every array; actions has {t}, mismatched: {wrong}")

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def succeeded(self) -> bool:
        return bool(np.any(self.success))


@dataclass
class DemoSet:
    """A loaded demo folder: its index metadata and episodes."""

    meta: dict[str, Any]
    """index.json without its "episodes" list."""
    entries: list[dict[str, Any]]
    """The index entries, in order."""
    root: Path

    def __len__(self) -> int:
        return len(self.entries)

    def episode(self, i: int) -> Episode:
        return load_episode(self.root / self.entries[i]["file"], self.entries[i])

    def __iter__(self) -> Iterator[Episode]:
        return (self.episode(i) for i in range(len(self)))

    @property
    def num_steps(self) -> int:
        return int(sum(e["length"] for e in self.entries))


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def save_episode(path: Path, episode: Episode) -> None:
    arrays = {f"image_{c}": np.asarray(v, dtype=np.uint8) for c, v in episode.images.items()}
    arrays.update(proprio=np.asarray(episode.proprio, dtype=np.float32),
                  actions=np.asarray(episode.actions, dtype=np.float32),
                  rewards=np.asarray(episode.rewards, dtype=np.float32),
                  success=np.asarray(episode.success, dtype=bool))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    _atomic_write(path, write)


def load_episode(path: Path, entry: dict[str, Any]) -> Episode:
    with np.load(path) as data:
        images = {k.removeprefix("image_"): data[k] for k in data.files if k.startswith("image_")}
        return Episode(images=images, proprio=data["proprio"], actions=data["actions"], rewards=data["rewards"],
                       success=data["success"], instruction=entry["instruction"], reset_id=int(entry["reset_id"]))


class DemoWriter:
    """Writes episodes into a demo folder as they come, then the index on `close()`."""

    def __init__(self, root: str | Path, meta: dict[str, Any]) -> None:
        self.root = Path(root)
        if (self.root / INDEX).exists():
            raise FileExistsError(f"{self.root} already holds demonstrations ({INDEX}); pick another folder or delete it")
        (self.root / "episodes").mkdir(parents=True, exist_ok=True)
        self.meta = {"format": FORMAT, "version": VERSION, **meta}
        self.entries: list[dict[str, Any]] = []

    def add(self, episode: Episode) -> dict[str, Any]:
        rel = f"episodes/{len(self.entries):06d}.npz"
        save_episode(self.root / rel, episode)
        entry = {"file": rel, "length": len(episode), "instruction": episode.instruction,
                 "reset_id": int(episode.reset_id), "success": episode.succeeded,
                 "return": float(np.sum(episode.rewards))}
        self.entries.append(entry)
        return entry

    def close(self) -> Path:
        index = {**self.meta, "episodes": self.entries}
        errors = validate_index(index)
        if errors:
            raise ValueError(f"refusing to write an invalid demo index: {errors}")
        _atomic_write(self.root / SCHEMA_FILE, lambda p: p.write_text(json.dumps(INDEX_SCHEMA, indent=2) + "\n"))
        _atomic_write(self.root / INDEX, lambda p: p.write_text(json.dumps(index, indent=2) + "\n"))
        return self.root / INDEX


def validate_index(index: dict[str, Any]) -> list[str]:
    """Problems of an index against INDEX_SCHEMA's required keys and basic types ([] when valid)."""
    errors = []
    for key in INDEX_SCHEMA["required"]:
        if key not in index:
            errors.append(f"missing key {key!r}")
    if index.get("format") != FORMAT:
        errors.append(f"format is {index.get('format')!r}, expected {FORMAT!r}")
    if index.get("version") != VERSION:
        errors.append(f"version is {index.get('version')!r}, this reader knows {VERSION}")
    required = INDEX_SCHEMA["properties"]["episodes"]["items"]["required"]
    for i, entry in enumerate(index.get("episodes", [])):
        missing = [k for k in required if k not in entry]
        if missing:
            errors.append(f"episodes[{i}] misses {missing}")
    return errors


def load_demos(root: str | Path) -> DemoSet:
    """Read a demo folder's index (episodes load lazily through `DemoSet.episode`)."""
    root = Path(root)
    path = root / INDEX
    if not path.is_file():
        raise FileNotFoundError(f"{root} is not a demo folder: no {INDEX} (generate one with `vla-rl demos`)")
    index = json.loads(path.read_text())
    errors = validate_index(index)
    if errors:
        raise ValueError(f"{path} is not a valid {FORMAT} index: {'; '.join(errors)}")
    entries = index.pop("episodes")
    return DemoSet(meta=index, entries=entries, root=root)


__all__ = ["FORMAT", "INDEX_SCHEMA", "VERSION", "DemoSet", "DemoWriter", "Episode", "load_demos", "load_episode",
           "save_episode", "validate_index"]
