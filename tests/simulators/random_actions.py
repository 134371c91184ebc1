"""Seeded uniform actions in [-0.5, 0.5) for simulator tests (the same draws in every backend's tests)."""

import numpy as np


def random_actions(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, size=shape).astype(np.float32)
