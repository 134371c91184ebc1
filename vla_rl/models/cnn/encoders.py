"""Image encoders of the CNN policy family, by name (registry `CNN_ENCODERS`).

- "flatten": the Atari DQN trunk (8x8/4, 4x4/2, 3x3/1 convolutions), flattened, then a linear
  projection. Every output unit is tied to fixed pixel positions, so with a few dozen demos it
  learns where things were in *those* images and localises objects poorly elsewhere.
- "keypoints": convolutions that keep a 16x16 map (at 64 px), a 1x1 convolution to K feature maps,
  and a spatial soft-argmax per map (Levine et al., 2016): each map becomes the expected (x, y)
  image position of what it responds to. A policy reading coordinates instead of pixels moves its
  answer with the object, which is what generalising to unseen object positions needs.

Each encoder maps (N, 3, S, S) normalised images to (N, hidden) features.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from vla_rl.registry import Registry

CNN_ENCODERS: Registry[Callable[..., nn.Module]] = Registry("cnn encoder")


class SpatialSoftArgmax(nn.Module):
    """(N, K, H, W) feature maps -> (N, 2K) expected x and y in [-1, 1] under a per-map softmax."""

    def __init__(self, height: int, width: int) -> None:
        super().__init__()
        ys, xs = torch.meshgrid(torch.linspace(-1.0, 1.0, height), torch.linspace(-1.0, 1.0, width), indexing="ij")
        self.register_buffer("grid", torch.stack([xs.flatten(), ys.flatten()], dim=-1), persistent=False)  # (HW, 2)
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        n, k = maps.shape[:2]
        weights = torch.softmax(maps.flatten(2) / self.log_temperature.exp(), dim=-1)  # (N, K, HW)
        return (weights @ self.grid.to(weights.dtype)).view(n, 2 * k)


@CNN_ENCODERS.register("flatten")
class FlattenEncoder(nn.Module):
    """See the module docstring ("flatten")."""

    def __init__(self, image_size: int, channels: tuple[int, int, int], hidden: int) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.convs = nn.Sequential(nn.Conv2d(3, c1, 8, 4), nn.ReLU(), nn.Conv2d(c1, c2, 4, 2), nn.ReLU(),
                                   nn.Conv2d(c2, c3, 3, 1), nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, 3, image_size, image_size)).shape[1]
        self.proj = nn.Linear(flat, hidden)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(self.convs(images)).relu()


@CNN_ENCODERS.register("keypoints")
class KeypointEncoder(nn.Module):
    """See the module docstring ("keypoints"); K = the last conv's channel count."""

    def __init__(self, image_size: int, channels: tuple[int, int, int], hidden: int) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.convs = nn.Sequential(nn.Conv2d(3, c1, 5, 2, 2), nn.ReLU(), nn.Conv2d(c1, c2, 3, 2, 1), nn.ReLU(),
                                   nn.Conv2d(c2, c2, 3, 1, 1), nn.ReLU(), nn.Conv2d(c2, c3, 1))
        with torch.no_grad():
            side = self.convs(torch.zeros(1, 3, image_size, image_size)).shape[-1]
        self.soft_argmax = SpatialSoftArgmax(side, side)
        self.proj = nn.Linear(2 * c3, hidden)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(self.soft_argmax(self.convs(images))).relu()


__all__ = ["CNN_ENCODERS", "FlattenEncoder", "KeypointEncoder", "SpatialSoftArgmax"]
