"""Shared fixtures: tiny policies built from config (random weights) and synthetic observations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

INSTRUCTIONS = ["pick up the red cube", "push the cube to the goal region", "lift", "put the peg in the hole"]


def _make_obs(n: int, size: int = 64, seed: int = 0, proprio_dim: int = 9, wrist: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    images = {"main": rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)}
    if wrist:
        images["wrist"] = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    return {
        "images": images,
        "proprio": rng.standard_normal((n, proprio_dim)).astype(np.float32),
        "instruction": [INSTRUCTIONS[i % len(INSTRUCTIONS)] for i in range(n)],
    }


@pytest.fixture(scope="session")
def make_obs():
    """make_obs(n, size=64, seed=0, proprio_dim=9, wrist=False) -> a synthetic observation batch."""
    return _make_obs
