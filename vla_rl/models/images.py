"""Image preprocessing inside a policy: uint8 camera frames -> resized uint8 tensors -> normalised floats.

The rollout buffer stores the resized uint8 tensor (16x smaller than normalised floats), and both
`act` and `evaluate` normalise from it, so the two see bit-identical pixels.

Resizing (only when a frame is not already at the policy's size) is a named method the policy records:
"bicubic_pil" is what OpenVLA's image processor does (torchvision's resize of a PIL image, i.e. Pillow's
8-bit bicubic with its antialiasing support), done with Pillow itself for frames on the CPU; frames on
another device use torch's antialiased bicubic, the closest torch kernel (Pillow rounds to 8 bits
between its two passes, torch does not, so single pixels of a noisy frame can differ by a few levels).
"bilinear" (torch, antialiased) is what checkpoints saved before the method was recorded used.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# What OpenVLA's released processor applies for DINOv2: the ImageNet statistics rounded to bfloat16.
OPENVLA_DINO_MEAN = (0.484375, 0.455078125, 0.40625)
OPENVLA_DINO_STD = (0.228515625, 0.2236328125, 0.224609375)
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)


RESIZE_METHODS = ("bicubic_pil", "bilinear")
"""Names a policy may record as its resize method (see the module docstring)."""


def _torch_resize(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, size, size) uint8 with torch's antialiased `mode` kernel."""
    y = F.interpolate(x.permute(0, 3, 1, 2).float(), size=(size, size), mode=mode, antialias=True, align_corners=False)
    return y.round().clamp(0, 255).to(torch.uint8)


def _pil_bicubic(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, H, W, 3) uint8 on the CPU -> (N, 3, size, size) uint8, each frame resized by Pillow's bicubic."""
    frames = [np.asarray(Image.fromarray(f).resize((size, size), Image.Resampling.BICUBIC)) for f in x.numpy()]
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)


def to_uint8_chw(frames: Any, size: int, device: torch.device | str = "cpu", resize: str = "bilinear") -> torch.Tensor:
    """(N, H, W, 3) uint8 (numpy or torch) -> (N, 3, size, size) uint8 tensor on `device`, resized with the
    `resize` method (RESIZE_METHODS) when the frames are not already size x size."""
    x = torch.as_tensor(np.asarray(frames) if not isinstance(frames, torch.Tensor) else frames)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected images of shape (N, H, W, 3), got {tuple(x.shape)}")
    if x.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images (0..255), got {x.dtype}; convert with .astype(np.uint8)")
    if resize not in RESIZE_METHODS:
        raise ValueError(f"resize method {resize!r} is not one of {RESIZE_METHODS}")
    if tuple(x.shape[1:3]) == (size, size):
        return x.to(device).permute(0, 3, 1, 2).contiguous()
    if resize == "bilinear":
        return _torch_resize(x.to(device), size, "bilinear")
    if x.device.type == "cpu":
        return _pil_bicubic(x.contiguous(), size).to(device).contiguous()
    return _torch_resize(x.to(device), size, "bicubic")


def normalise_pixels(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...], dtype: torch.dtype) -> torch.Tensor:
    """(..., 3, S, S) uint8 -> float in `dtype`: (x / 255 - mean) / std per channel."""
    m = torch.tensor(mean, device=images.device, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, device=images.device, dtype=torch.float32).view(3, 1, 1)
    return ((images.float() / 255.0 - m) / s).to(dtype)


def stack_cameras(obs_images: dict[str, Any], cameras: tuple[str, ...], size: int, device: torch.device | str,
                  resize: str = "bilinear") -> torch.Tensor:
    """The named cameras of an observation as one (N, C, 3, size, size) uint8 tensor."""
    missing = [c for c in cameras if c not in obs_images]
    if missing:
        raise KeyError(f"observation has no camera {missing}; it has {sorted(obs_images)} (check model.use_wrist / env cameras)")
    return torch.stack([to_uint8_chw(obs_images[c], size, device, resize) for c in cameras], dim=1)


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "OPENVLA_DINO_MEAN", "OPENVLA_DINO_STD", "RESIZE_METHODS", "SIGLIP_MEAN", "SIGLIP_STD",
           "normalise_pixels", "stack_cameras", "to_uint8_chw"]
