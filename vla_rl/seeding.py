"""Seed every global RNG a run draws from (Python, NumPy, torch) in one call.

A leaf module: the runner seeds its process with it and the placement seeds each data-parallel
rank's replica (`runner.seed + rank`), so it sits below both.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's `random`, NumPy's global RNG and torch's default generator with `seed`."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


__all__ = ["seed_everything"]
