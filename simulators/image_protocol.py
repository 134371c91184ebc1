"""Camera-image protocols: how a rendered frame becomes the image a policy sees (`env.image_protocol`).

A protocol says at which size the simulator renders (`render_size`) and what happens to each
rendered frame, after the backend's own orientation fix, before it leaves the env (`process`):

- `raw`: render at `env.image_size` and hand the frame over unchanged (the CPU recipes; fastest).
- `openvla`: the preprocessing of OpenVLA's and OpenVLA-OFT's published LIBERO evaluations
  (`experiments/robot/libero/run_libero_eval.py` with `libero_utils.py`/`openvla_utils.py` of
  openvla/openvla and moojink/openvla-oft), which their released LIBERO checkpoints were trained and
  scored with: render at 256 px, JPEG encode and decode (TensorFlow's defaults: quality 95, 4:2:0
  chroma), Lanczos-3 resize with antialiasing to `image_size` (224 in the reference), rounded to
  uint8, then the centre crop of 90% of the area resized back to `image_size` (TensorFlow's
  `crop_and_resize`, bilinear, on [0, 1] floats, converted back to uint8 by `convert_image_dtype`).
  The reference applies it to the wrist image too.

The reference runs TensorFlow; this module reproduces the same arithmetic with Pillow and numpy
(TensorFlow is not a dependency): the resize is Pillow's Lanczos filter on float32 planes (the same
kernel, support and pixel-centre convention as `tf.image.resize(..., "lanczos3", antialias=True)`),
the crop samples the box corners-to-corners as `crop_and_resize` does. One step cannot be matched
bit for bit: JPEG decoding here uses libjpeg's accurate integer IDCT, TensorFlow's decoder may pick
the fast one; both differ from the encoded frame by far more than from each other.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from vla_rl.registry import Registry

OPENVLA_RENDER_SIZE = 256
"""Render resolution of the reference LIBERO evaluation (`get_libero_env(..., resolution=256)`)."""
OPENVLA_JPEG_QUALITY = 95
"""`tf.image.encode_jpeg`'s default quality."""
OPENVLA_CROP_AREA = 0.9
"""Area of the centre crop relative to the image (`center_crop_image`: crop_scale = 0.9)."""


@dataclass(frozen=True)
class ImageProtocol:
    """One way from a rendered frame to a policy image."""

    name: str
    render_size: Callable[[int], int]
    """image_size -> the square size the simulator renders at."""
    process: Callable[[np.ndarray, int], np.ndarray]
    """(rendered (H, W, 3) uint8, image_size) -> (image_size, image_size, 3) uint8."""
    description: str
    """One line for specs and manifests."""


IMAGE_PROTOCOLS: Registry[ImageProtocol] = Registry("image protocol")


def jpeg_round_trip(image: np.ndarray, quality: int = OPENVLA_JPEG_QUALITY) -> np.ndarray:
    """Encode as baseline JPEG (4:2:0 chroma) and decode back to uint8 RGB."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality, subsampling="4:2:0")
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))


def lanczos_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Lanczos-3 resize with antialiasing to (size, size) in float precision, rounded and clipped to uint8."""
    from PIL import Image

    if image.shape[:2] == (size, size):
        return image
    planes = [np.asarray(Image.fromarray(image[..., c].astype(np.float32), mode="F").resize(
        (size, size), Image.Resampling.LANCZOS)) for c in range(image.shape[-1])]
    return np.clip(np.round(np.stack(planes, axis=-1)), 0, 255).astype(np.uint8)


def centre_crop_resize(image: np.ndarray, area: float = OPENVLA_CROP_AREA) -> np.ndarray:
    """The centre crop of `area` of the image, resized back to the image's size, as TensorFlow's
    `crop_and_resize` does it: bilinear samples spread from the box's first to its last pixel centre,
    on [0, 1] floats, then `convert_image_dtype` back to uint8 (x * 255.5, truncated)."""
    h, w = image.shape[:2]
    side = min(max(math.sqrt(area), 0.0), 1.0)
    lo, hi = (1.0 - side) / 2.0, (1.0 - side) / 2.0 + side

    def axis(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        coords = lo * (n - 1) + np.arange(n) * (hi - lo)  # crop_and_resize with crop size = image size
        first = np.floor(coords).astype(int)
        return first, np.minimum(first + 1, n - 1), (coords - first).astype(np.float32)

    y0, y1, fy = axis(h)
    x0, x1, fx = axis(w)
    x = image.astype(np.float32) / 255.0
    top = x[y0][:, x0] * (1 - fx)[None, :, None] + x[y0][:, x1] * fx[None, :, None]
    bottom = x[y1][:, x0] * (1 - fx)[None, :, None] + x[y1][:, x1] * fx[None, :, None]
    out = top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]
    return np.floor(np.clip(out, 0.0, 1.0) * 255.5).astype(np.uint8)


def openvla_image(frame: np.ndarray, image_size: int) -> np.ndarray:
    """The reference LIBERO preprocessing of one (already rotated) frame rendered at 256 px."""
    return centre_crop_resize(lanczos_resize(jpeg_round_trip(frame), image_size))


IMAGE_PROTOCOLS.register("raw")(ImageProtocol(
    name="raw", render_size=lambda size: size, process=lambda frame, size: frame,
    description="rendered at env.image_size, unchanged"))
IMAGE_PROTOCOLS.register("openvla")(ImageProtocol(
    name="openvla", render_size=lambda size: OPENVLA_RENDER_SIZE, process=openvla_image,
    description=(f"OpenVLA/OFT LIBERO evaluation: rendered at {OPENVLA_RENDER_SIZE} px, JPEG q{OPENVLA_JPEG_QUALITY} "
                 f"round trip, Lanczos-3 resize, centre crop of {OPENVLA_CROP_AREA:.0%} of the area resized back")))


__all__ = ["IMAGE_PROTOCOLS", "ImageProtocol", "OPENVLA_CROP_AREA", "OPENVLA_JPEG_QUALITY", "OPENVLA_RENDER_SIZE",
           "centre_crop_resize", "jpeg_round_trip", "lanczos_resize", "openvla_image"]
