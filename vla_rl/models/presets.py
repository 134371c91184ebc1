"""Size presets of the built-in families: `model.size` names one, `model.image_size` replaces its image size."""

from __future__ import annotations

import dataclasses
from typing import Mapping, TypeVar

Size = TypeVar("Size")


def size_preset(sizes: Mapping[str, Size], cfg, family: str) -> Size:
    """The `cfg.size` preset among a family's `sizes`, with `cfg.image_size` in place of its own where set."""
    if cfg.size not in sizes:
        raise ValueError(f"model.size={cfg.size!r} is not one of the {family} presets; choose one of {sorted(sizes)}")
    size = sizes[cfg.size]
    return size if cfg.image_size is None else dataclasses.replace(size, image_size=cfg.image_size)
