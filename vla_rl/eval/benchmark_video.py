"""One failure video per task: an `EpisodeObserver` that keeps the frames of each environment's
running episode while that task has no failure video yet, and writes the first failed episode of
each task to `<out>/videos/task003_fail_r000153.mp4` (main camera, instruction and step drawn on).

Frames are kept raw (what the policy saw) and annotated only when a video is written, so an episode
that succeeds costs only its frames' memory while it runs. Chunked policies give one frame per
chunk (the observation `chunk_step` returns), and the video plays at control rate / chunk.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from vla_rl.eval.episodes import EpisodeObserver

VIDEOS_DIR = "videos"


def task_videos(out_dir: Path) -> dict[int, Path]:
    """task index -> its failure video already in `out_dir` (the first, by name)."""
    out: dict[int, Path] = {}
    for path in sorted((out_dir / VIDEOS_DIR).glob("task*_fail_r*.mp4")):
        out.setdefault(int(path.name[4:7]), path)
    return out


class FailureVideos(EpisodeObserver):
    """Writes the first failure of each task (tasks in `have` already have one) under `out_dir/videos`."""

    def __init__(self, out_dir: str | Path, task_of: Any, fps: float, camera: str = "main",
                 have: set[int] | None = None) -> None:
        self.dir = Path(out_dir) / VIDEOS_DIR
        self.task_of = task_of
        self.fps = fps
        self.camera = camera
        self.have = set(have or ())
        self.written: list[Path] = []
        self._frames: dict[int, list[np.ndarray]] = {}
        self._instruction: dict[int, str] = {}

    def started(self, env_index: int, reset_id: int, obs: dict) -> None:
        self._frames.pop(env_index, None)
        if self.task_of(reset_id) not in self.have:
            self._frames[env_index] = [np.array(obs["images"][self.camera][env_index])]
            self._instruction[env_index] = str(obs["instruction"][env_index])

    def stepped(self, obs: dict, running: np.ndarray) -> None:
        for i, frames in self._frames.items():
            if running[i]:
                frames.append(np.array(obs["images"][self.camera][i]))

    def ended(self, env_index: int, reset_id: int, success: bool, episode_return: float, length: int) -> None:
        frames = self._frames.pop(env_index, None)
        task = self.task_of(reset_id)
        if frames is None or success or task in self.have:
            return
        self.have.add(task)
        self.written.append(self._write(frames, self._instruction[env_index], task, reset_id, length))

    def _write(self, frames: list[np.ndarray], instruction: str, task: int, reset_id: int, length: int) -> Path:
        from simulators.video import annotate, upscale, write_video

        path = self.dir / f"task{task:03d}_fail_r{reset_id:06d}.mp4"
        tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.mp4")
        shown = [annotate(upscale(f, 256), instruction, f"frame {i + 1}/{len(frames)}  FAILED after {length} steps")
                 for i, f in enumerate(frames)]
        write_video(str(tmp), shown, max(1.0, self.fps))
        os.replace(tmp, path)
        return path


def keep_one_video_per_task(out_dir: Path) -> dict[int, Path]:
    """Remove extra failure videos of a task (parallel shards may each write one); returns what remains."""
    keep = task_videos(out_dir)
    for path in (out_dir / VIDEOS_DIR).glob("task*_fail_r*.mp4"):
        if path not in keep.values():
            path.unlink()
    return keep


__all__ = ["FailureVideos", "VIDEOS_DIR", "keep_one_video_per_task", "task_videos"]
