"""Record one environment's camera to mp4, with its instruction and success drawn on each frame.

    with EpisodeVideo("out/pickcube.mp4", fps=env.spec.control_hz) as video:
        obs = env.reset([0] * env.num_envs)
        video.add(obs)
        for _ in range(50):
            res = env.step(actions)
            video.add(res.obs, success=bool(res.info["success"][0]))

Frames are upscaled (nearest neighbour) to at least `min_size` pixels so the text stays legible;
text is drawn with Pillow's built-in font (no OpenCV). Encoding uses imageio-ffmpeg (libx264).
"""

from __future__ import annotations

import os
import textwrap
from typing import Any

import numpy as np

OK_GREEN = (40, 220, 60)
PLAIN = (255, 255, 255)


def upscale(frame: np.ndarray, min_size: int) -> np.ndarray:
    """Nearest-neighbour upscale by the smallest integer factor that makes the short side >= min_size."""
    factor = max(1, -(-min_size // min(frame.shape[:2])))
    return frame.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else frame


def annotate(frame: np.ndarray, top: str, bottom: str, bottom_color: tuple[int, int, int] = PLAIN) -> np.ndarray:
    """A copy of `frame` (H, W, 3 uint8) with `top` (wrapped) and `bottom` text on dark bands."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.fromarray(np.ascontiguousarray(frame))
    draw = ImageDraw.Draw(img, "RGBA")
    font = ImageFont.load_default()
    line_h = 12
    chars = max(8, frame.shape[1] // 7)
    lines = textwrap.wrap(top, chars)[:3]
    if lines:
        draw.rectangle([0, 0, frame.shape[1], line_h * len(lines) + 4], fill=(0, 0, 0, 150))
        for i, line in enumerate(lines):
            draw.text((3, 2 + i * line_h), line, fill=PLAIN, font=font)
    if bottom:
        y = frame.shape[0] - line_h - 4
        draw.rectangle([0, y, frame.shape[1], frame.shape[0]], fill=(0, 0, 0, 150))
        draw.text((3, y + 2), bottom, fill=bottom_color, font=font)
    return np.asarray(img)


class EpisodeVideo:
    """Collects annotated frames of env `env_index`'s `camera` and writes them to `path` on close."""

    def __init__(
        self, path: str, fps: float = 20.0, camera: str = "main", env_index: int = 0, min_size: int = 256
    ) -> None:
        self.path = path
        self.fps = fps
        self.camera = camera
        self.env_index = env_index
        self.min_size = min_size
        self.frames: list[np.ndarray] = []
        self._success_seen = False

    def add(self, obs: dict[str, Any], success: bool | None = None, reward: float | None = None) -> None:
        """Append the frame of `obs` (a batched observation); `success` and `reward` are drawn if given."""
        frame = upscale(obs["images"][self.camera][self.env_index], self.min_size)
        self._success_seen |= bool(success)
        parts = [f"t={len(self.frames)}"]
        if reward is not None:
            parts.append(f"r={reward:.2f}")
        if success is not None:
            parts.append("SUCCESS" if success else ("success seen" if self._success_seen else "running"))
        color = OK_GREEN if success else PLAIN
        self.frames.append(annotate(frame, obs["instruction"][self.env_index], "  ".join(parts), color))

    def new_episode(self) -> None:
        """Call when the recorded env starts a new episode (resets the "success seen" marker)."""
        self._success_seen = False

    def close(self) -> str:
        """Encode the collected frames (nothing is written when there are none); returns the path."""
        if self.frames:
            write_video(self.path, self.frames, self.fps)
        return self.path

    def __enter__(self) -> "EpisodeVideo":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_video(path: str, frames: list[np.ndarray], fps: float) -> None:
    """Encode uint8 frames (all the same even size) to an H.264 mp4 at `path`."""
    import imageio.v2 as imageio

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1, quality=7) as writer:
        for frame in frames:
            writer.append_data(frame)
