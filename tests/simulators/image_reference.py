"""The reference LIBERO image preprocessing (openvla/openvla-oft) rewritten with plain 8-bit Pillow
calls, a synthetic rendered-looking frame, and the tolerance that separates them from ours."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image


def reference_openvla(frame: np.ndarray, size: int = 224) -> np.ndarray:
    """openvla-oft's `resize_image_for_policy` + `center_crop_image`, as Pillow operations on 8-bit images."""
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=95)
    buffer.seek(0)
    img = Image.open(buffer).convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
    side = size * math.sqrt(0.9)
    off = (size - side) / 2
    return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR, box=(off, off, off + side, off + side)))


def synthetic_frame(size: int = 256, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.stack([180 * x + 40, 120 * y + 60, 90 * (1 - x * y) + 50], axis=-1)
    for _ in range(12):  # objects with hard edges
        x0, y0 = rng.integers(0, size - 40, 2)
        w, h = rng.integers(10, 60, 2)
        img[y0:y0 + h, x0:x0 + w] = rng.integers(0, 256, 3)
    img += rng.normal(0, 4, img.shape)  # texture
    return np.clip(img, 0, 255).astype(np.uint8)


def close_to_reference(ours: np.ndarray, ref: np.ndarray) -> bool:
    """Within the 8-bit rounding of Pillow's fixed-point filters: mean |d| <= 0.5, <= 1% of values off by > 1."""
    d = np.abs(ours.astype(int) - ref.astype(int))
    return bool(d.mean() <= 0.5 and (d > 1).mean() <= 0.01)
