"""Image preprocessing inside a policy: uint8 camera frames -> resized uint8 tensors -> normalised floats.

The rollout buffer stores the resized uint8 tensor (16x smaller than normalised floats), and both
`act` and `evaluate` normalise from it, so the two see bit-identical pixels. Torch only (no
torchvision): bilinear resize with antialiasing, rounded back to uint8.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# What OpenVLA's released processor applies for DINOv2: the ImageNet statistics rounded to bfloat16.
OPENVLA_DINO_MEAN = (0.484375, 0.455078125, 0.40625)
OPENVLA_DINO_STD = (0.228515625, 0.2236328125, 0.224609375)
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)


def to_uint8_chw(frames: Any, size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, H, W, 3) uint8 (numpy or torch) -> (N, 3, size, size) uint8 tensor, resized when needed."""
    x = torch.as_tensor(np.asarray(frames) if not isinstance(frames, torch.Tensor) else frames)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected images of shape (N, H, W, 3), got {tuple(x.shape)}")
    if x.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images (0..255), got {x.dtype}; convert with .astype(np.uint8)")
    x = x.to(device).permute(0, 3, 1, 2)
    if x.shape[-2:] == (size, size):
        return x.contiguous()
    y = F.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return y.round().clamp(0, 255).to(torch.uint8)


def normalise_pixels(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...], dtype: torch.dtype) -> torch.Tensor:
    """(..., 3, S, S) uint8 -> float in `dtype`: (x / 255 - mean) / std per channel."""
    m = torch.tensor(mean, device=images.device, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, device=images.device, dtype=torch.float32).view(3, 1, 1)
    return ((images.float() / 255.0 - m) / s).to(dtype)


def stack_cameras(obs_images: dict[str, Any], cameras: tuple[str, ...], size: int, device: torch.device | str) -> torch.Tensor:
    """The named cameras of an observation as one (N, C, 3, size, size) uint8 tensor."""
    missing = [c for c in cameras if c not in obs_images]
    if missing:
        raise KeyError(f"observation has no camera {missing}; it has {sorted(obs_images)} (check model.use_wrist / env cameras)")
    return torch.stack([to_uint8_chw(obs_images[c], size, device) for c in cameras], dim=1)


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "OPENVLA_DINO_MEAN", "OPENVLA_DINO_STD", "SIGLIP_MEAN", "SIGLIP_STD", "normalise_pixels", "stack_cameras", "to_uint8_chw"]
