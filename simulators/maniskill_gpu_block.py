"""One GPU scene of the "maniskill_gpu" backend: a ManiSkill env of M parallel envs and their episodes.

GPU physics steps every env of a scene at once, so a `SceneBlock` is the unit the backend steps:
the envs [start, start + M) of the vector env. Everything stays a torch tensor on the scene's device:
the latest observation of each env, the per-env episode bookkeeping (`TensorEpisodes`), and what a
chunk returns. Semantics are those of `SubprocVectorEnv` (docs/simulators.md):

- an env whose episode ends at step k of a chunk is not "executed" for the rest of the chunk (its
  reward is 0 there and its flags stay set); physics cannot skip it, so it is stepped with a hold
  action (zero motion, its last gripper target) and those steps are discarded;
- an env finished in fixed-length mode is stepped the same way for the whole chunk and keeps its
  last observation;
- observations are rendered only where they are used: at the last step of a chunk, and at a step
  where some episode ended (its final observation); other steps run with observations off.

Resets go through `maniskill_scene.seeded_reset` one env at a time (no rendering), then one
render for the whole scene: a reset id names one state whatever is reset with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from simulators import maniskill_scene as scene
from simulators.maniskill_tasks import ManiSkillTask


class TensorEpisodes:
    """Running statistics of the current episode of M envs (tensors on one device)."""

    def __init__(self, m: int, device: torch.device) -> None:
        z = dict(device=device)
        self.reset_id = torch.zeros(m, dtype=torch.int64, **z)
        self.length = torch.zeros(m, dtype=torch.int64, **z)
        self.ret = torch.zeros(m, dtype=torch.float64, **z)
        self.success_once = torch.zeros(m, dtype=torch.bool, **z)
        self.max_steps = torch.ones(m, dtype=torch.int64, **z)
        self.done = torch.zeros(m, dtype=torch.bool, **z)
        """Fixed-length mode: the episode ended and the env waits for an explicit reset."""
        self.terminated = torch.zeros(m, dtype=torch.bool, **z)
        self.truncated = torch.zeros(m, dtype=torch.bool, **z)

    def start(self, rows: torch.Tensor, reset_ids: torch.Tensor, max_steps: int) -> None:
        """A new episode began in each of `rows`."""
        self.reset_id[rows] = reset_ids
        self.max_steps[rows] = max_steps
        for t in (self.length, self.ret, self.success_once, self.done, self.terminated, self.truncated):
            t[rows] = 0


@dataclass
class ChunkOutcome:
    """What one chunk did to the M envs of a block (tensors on the block's device)."""

    reward: torch.Tensor
    """float32 (M, K)."""
    terminated: torch.Tensor
    """bool (M, K), true from the step the episode ended to the end of the chunk."""
    truncated: torch.Tensor
    """bool (M, K)."""
    executed: torch.Tensor
    """bool (M, K)."""
    ended: torch.Tensor
    """bool (M,): the episode ended in this chunk."""
    success: torch.Tensor
    """bool (M,): success at the last executed step."""
    success_at_end: torch.Tensor
    """bool (M,): success at the step the episode ended (where `ended`)."""
    ret: torch.Tensor
    """float64 (M,): episode return so far (the finished episode's where `ended`)."""
    length: torch.Tensor
    """int64 (M,): episode length so far."""
    success_once: torch.Tensor
    """bool (M,)."""


class SceneBlock:
    """M envs in one ManiSkill env (one GPU scene set); see the module docstring."""

    def __init__(self, *, task: str, meta: ManiSkillTask, start: int, num_envs: int, image_size: int,
                 cameras: tuple[str, ...], reward_mode: str, max_episode_steps: int | None,
                 terminate_on_success: bool, mesh_detail: float, spawn_scale: float, sim_backend: str,
                 render_backend: str | None) -> None:
        self.start, self.num_envs, self.cameras, self.meta = start, num_envs, cameras, meta
        self.env = scene.make_env(task, image_size=image_size, cameras=cameras, reward_mode=reward_mode,
                                  num_envs=num_envs, sim_backend=sim_backend, render_backend=render_backend)
        scene.install_spawn_scale(self.env, meta, spawn_scale)
        scene.prepare_scene(self.env, meta, mesh_detail)
        self.device = self.env.device
        self.max_steps = int(max_episode_steps or scene.default_max_steps(task))
        self.terminate_on_success = terminate_on_success
        self.book = TensorEpisodes(num_envs, self.device)
        raw = self.env.get_obs()
        self.images = {c: img.clone() for c, img in scene.images(raw, cameras).items()}
        self.proprio = scene.proprio(self.env, raw)
        self.started = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        """Which envs have been reset through `reset` (stepping before that is refused)."""
        self.action_dim = int(self.env.single_action_space.shape[0])
        self._hold = torch.zeros(num_envs, self.action_dim, device=self.device)
        """Hold action per env: zero motion, the last gripper target sent (+1: open, as after a reset)."""
        self._hold[:, -1] = 1.0

    @property
    def env_ids(self) -> list[int]:
        return list(range(self.start, self.start + self.num_envs))

    # ------------------------------------------------------------------ resets
    def reset(self, rows: Sequence[int], reset_ids: Sequence[int]) -> None:
        """Reset local envs `rows` to `reset_ids` (one seeded reset each), then render the scene once."""
        for row, rid in zip(rows, reset_ids):
            scene.seeded_reset(self.env, torch.tensor([row], device=self.device), int(rid))
        index = torch.as_tensor(list(rows), dtype=torch.int64, device=self.device)
        self._render_rows(index, self.env.get_obs())
        self.book.start(index, torch.as_tensor(list(reset_ids), dtype=torch.int64, device=self.device), self.max_steps)
        self._hold[index] = 0.0
        self._hold[index, -1] = 1.0
        self.started[index] = True

    def _render_rows(self, rows: torch.Tensor, raw: dict[str, Any]) -> None:
        """Copy the observation rows `rows` (index or mask) from a raw ManiSkill observation."""
        for c, img in scene.images(raw, self.cameras).items():
            self.images[c][rows] = img[rows]
        self.proprio[rows] = scene.proprio(self.env, raw)[rows]

    # ------------------------------------------------------------------ stepping
    def run_chunk(self, actions: torch.Tensor) -> ChunkOutcome:
        """Step all M envs through a chunk (M, K, A); see the module docstring for who executes."""
        m, k_len = actions.shape[:2]
        book, dev = self.book, self.device
        reward = torch.zeros(m, k_len, dtype=torch.float32, device=dev)
        terminated = book.terminated[:, None].expand(m, k_len) & book.done[:, None]
        truncated = book.truncated[:, None].expand(m, k_len) & book.done[:, None]
        terminated, truncated = terminated.clone(), truncated.clone()
        executed = torch.zeros(m, k_len, dtype=torch.bool, device=dev)
        success = torch.zeros(m, dtype=torch.bool, device=dev)
        success_at_end = torch.zeros(m, dtype=torch.bool, device=dev)
        ended = torch.zeros(m, dtype=torch.bool, device=dev)
        running = ~book.done
        for k in range(k_len):
            if not bool(running.any()):
                break
            act = torch.where(running[:, None], actions[:, k], self._hold)
            self._hold[running, -1] = act[running, -1]
            last = k == k_len - 1
            if last:
                raw, r, term, _, info = self.env.step(act)
            else:
                with scene.observations_off(self.env):
                    raw, r, term, _, info = self.env.step(act)
            if not self.terminate_on_success:  # ManiSkill ends episodes on success or fail: keep only fail
                term = info["fail"] if "fail" in info else torch.zeros_like(running)
            ok = info["success"] if "success" in info else torch.zeros_like(running)
            executed[:, k] = running
            reward[:, k] = torch.where(running, r.float(), 0.0)
            book.length += running.long()
            book.ret += reward[:, k].double()
            book.success_once |= running & ok
            success = torch.where(running, ok, success)
            term_now = running & term
            trunc_now = running & ~term & (book.length >= book.max_steps)
            end_now = term_now | trunc_now
            terminated[:, k:] |= term_now[:, None]
            truncated[:, k:] |= trunc_now[:, None]
            show = end_now | running if last else end_now
            if bool(show.any()):
                self._render_rows(show, raw if last else self.env.get_obs())
            success_at_end = torch.where(end_now, ok, success_at_end)
            ended |= end_now
            running = running & ~end_now
        book.terminated = torch.where(ended, terminated[:, -1], book.terminated)
        book.truncated = torch.where(ended, truncated[:, -1], book.truncated)
        return ChunkOutcome(reward, terminated, truncated, executed, ended, success, success_at_end,
                            book.ret.clone(), book.length.clone(), book.success_once.clone())

    def observation(self, rows: torch.Tensor | None = None) -> dict[str, Any]:
        """A copy of the latest observation of all M envs (or of local rows `rows`)."""
        pick = slice(None) if rows is None else rows
        n = self.num_envs if rows is None else len(rows)
        return {"images": {c: img[pick].clone() for c, img in self.images.items()},
                "proprio": self.proprio[pick].clone(), "instruction": [self.meta.instruction] * n}

    def close(self) -> None:
        self.env.close()


__all__ = ["ChunkOutcome", "SceneBlock", "TensorEpisodes"]
