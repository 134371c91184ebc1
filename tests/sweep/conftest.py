"""Fixtures of the sweep tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from sweep_helpers import write_sweep


@pytest.fixture
def sweep_file(tmp_path: Path) -> Path:
    """A two-cell (PPO, GRPO) tiny sweep file writing under tmp_path/out."""
    return write_sweep(tmp_path / "tiny.yaml")
