"""The "maniskill_gpu" backend: ManiSkill3 tasks on GPU physics, N envs in this process.

The N envs live in `env.num_workers` GPU scenes (`SceneBlock`s of contiguous env blocks; one by
default), each one ManiSkill env with `num_envs=M` on `physx_cuda`, rendered on the same GPU. Same
tasks, reward modes, `spawn_scale`, success info and episode semantics as the CPU backend (shared
code: `maniskill_scene.py`, `maniskill_tasks.py`), with these differences:

- **Tensors on the device.** `obs["images"][cam]` (N, H, W, 3) uint8, `obs["proprio"]` (N, 8),
  `reward`, `terminated`, `truncated` (N, K) and `info["final_obs"]` are torch tensors on the
  scenes' GPU, handed to the policy without a host round trip. The rest of `info` (episode
  statistics, `executed`, `reset_id`, `success`) is small and comes back as numpy (one copy per
  chunk): it is bookkeeping and metrics. Actions may be numpy or torch.
- **Reset ids** name a state whatever else is reset with it (`maniskill_scene.seeded_reset`): the
  robot's joint noise equals the CPU backend's for the same id; object placements are drawn on the
  GPU, so they differ from the CPU backend's (with CPU physics, `sim_backend="physx_cpu"`, they are
  identical). Equal ids give identical first observations (GRPO groups).
- **Whole scenes step together.** `chunk_step_async(actions, env_ids)` takes whole scenes
  (`worker_env_ids()`); a subset of a scene is refused, since the others would be stepped too.
  Exact resume by replaying episodes (`placement.replay_env`) therefore does not work here.

Pipelining (hybrid mode): with k stages, the plan gives k (or a multiple of k) scenes, one stage per
scene set. `chunk_step_async` hands a stage's chunk to that scene's own thread and returns; the
caller infers the next stage meanwhile. ManiSkill calls from all threads are serialised by one lock
(SAPIEN's renderer is shared by the process), so what overlaps is the simulation of one stage with
the policy's inference of another, the design in docs/simulators.md ("GPU simulation and
pipelining").

Without CUDA, choosing this backend is a ConfigError naming the CPU backend ("maniskill"). Tests run
the same class on CPU physics (`sim_backend="physx_cpu"`, one env per scene), which ManiSkill allows.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np
import torch

from simulators import maniskill_scene as scene
from simulators.base import ChunkStepResult, EnvSpec, Obs, PendingChunks, ResetCursor, StepResult, VectorEnv
from simulators.maniskill_gpu_block import ChunkOutcome, SceneBlock
from simulators.maniskill_tasks import TASK_SUITES
from simulators.registry import ENV_BACKENDS
from vla_rl.config.backends.maniskill_gpu import ManiSkillGPUEnvConfig
from vla_rl.config.core import ConfigError

_SIM_LOCK = threading.Lock()
"""Held by any thread while it runs ManiSkill/SAPIEN code (one renderer per process)."""


def split_blocks(num_envs: int, num_scenes: int) -> list[tuple[int, int]]:
    """(start, size) of each scene's contiguous env block (sizes differ by at most one)."""
    blocks = np.array_split(np.arange(num_envs), min(num_scenes, num_envs))
    return [(int(b[0]), len(b)) for b in blocks]


@ENV_BACKENDS.register("maniskill_gpu")
class ManiSkillGPUVectorEnv(ResetCursor, PendingChunks, VectorEnv):
    """N ManiSkill3 envs on GPU physics in this process (see the module docstring)."""

    @classmethod
    def task_suites(cls) -> dict[str, tuple[str, ...]]:
        """The CPU backend's suites (the same tasks)."""
        return dict(TASK_SUITES)

    @classmethod
    def from_config(cls, cfg: ManiSkillGPUEnvConfig) -> "ManiSkillGPUVectorEnv":
        scene.check_config(cfg)
        if not torch.cuda.is_available():
            raise ConfigError("env.backend=maniskill_gpu simulates on a CUDA GPU and this machine has none; use "
                              "env.backend=maniskill (CPU physics, one env per worker process)", key="env.backend")
        gpu = torch.cuda.current_device()
        return cls(cfg, sim_backend=f"physx_cuda:{gpu}", render_backend=f"sapien_cuda:{gpu}")

    def __init__(self, cfg: ManiSkillGPUEnvConfig, sim_backend: str = "physx_cuda",
                 render_backend: str | None = None) -> None:
        meta = scene.check_config(cfg)
        num_scenes = cfg.num_workers or 1
        if sim_backend.startswith("physx_cpu") and cfg.num_envs != num_scenes:
            raise ValueError(f"CPU physics holds one env per scene: num_workers must equal num_envs ({cfg.num_envs})")
        self.num_envs = cfg.num_envs
        self.auto_reset = cfg.auto_reset
        self.worker_restarts = 0
        """Always 0: there are no worker processes to restart."""
        self._cursor = int(cfg.seed)
        self._blocks: list[SceneBlock] = []
        self._closed = False
        try:
            for start, size in split_blocks(cfg.num_envs, num_scenes):
                self._blocks.append(SceneBlock(
                    task=cfg.task, meta=meta, start=start, num_envs=size, image_size=cfg.image_size,
                    cameras=tuple(cfg.cameras), reward_mode=cfg.reward_mode, max_episode_steps=cfg.max_episode_steps,
                    terminate_on_success=cfg.terminate_on_success, mesh_detail=cfg.mesh_detail,
                    spawn_scale=cfg.spawn_scale, sim_backend=sim_backend, render_backend=render_backend))
        except BaseException:
            self.close()
            raise
        self._block_of = [i for i, b in enumerate(self._blocks) for _ in range(b.num_envs)]
        self._threads = [ThreadPoolExecutor(1, thread_name_prefix=f"maniskill-scene-{i}") for i in range(len(self._blocks))]
        self._pending: deque[tuple[list[int], Future]] = deque()
        first = self._blocks[0]
        space = first.env.single_action_space
        self.device = first.device
        self.spec = EnvSpec(
            backend="maniskill_gpu", task=cfg.task, action_dim=first.action_dim, control_hz=float(first.env.control_freq),
            max_episode_steps=first.max_steps, cameras=tuple(cfg.cameras), image_size=(cfg.image_size, cfg.image_size),
            proprio_dim=scene.PROPRIO_DIM, action_low=tuple(float(x) for x in space.low),
            action_high=tuple(float(x) for x in space.high), gripper_convention="open_positive",
            reward_mode=cfg.reward_mode,
            extras={**scene.spec_extras(first.env, meta, cfg.reward_mode, sim_backend, cfg.mesh_detail, cfg.spawn_scale),
                    "device": str(self.device), "num_scenes": len(self._blocks), "auto_reset": cfg.auto_reset},
        )

    # ------------------------------------------------------------------ contract
    def reset(self, reset_ids: Sequence[int] | None = None, env_ids: Sequence[int] | None = None) -> Obs:
        self._refuse_while_pending("reset")
        env_list = list(range(self.num_envs)) if env_ids is None else [int(e) for e in env_ids]
        if any(not 0 <= e < self.num_envs for e in env_list) or len(set(env_list)) != len(env_list):
            raise ValueError(f"env_ids={env_list} must be distinct indices in [0, {self.num_envs})")
        if reset_ids is None:
            id_list = [self._next_id() for _ in env_list]
        else:
            id_list = [int(r) for r in reset_ids]
            if len(id_list) != len(env_list) or any(r < 0 for r in id_list):
                raise ValueError(f"reset_ids={list(reset_ids)} must be {len(env_list)} non-negative ids, one per reset env")
        self._reset_envs(env_list, id_list)
        return self._observation(range(len(self._blocks)))

    def step(self, actions: Any) -> StepResult:
        a = self._as_actions(actions, rows=self.num_envs, chunked=False)
        res = self.chunk_step(a[:, None, :])
        info = dict(res.info, executed=res.info["executed"][:, 0])
        return StepResult(res.obs, res.reward[:, 0], res.terminated[:, 0], res.truncated[:, 0], info)

    def chunk_step(self, actions: Any) -> ChunkStepResult:
        self._refuse_while_pending("chunk_step")
        a = self._as_actions(actions, rows=self.num_envs)
        blocks = list(range(len(self._blocks)))
        outcomes = [self._run(i, a[b.start:b.start + b.num_envs]) for i, b in zip(blocks, self._blocks)]
        return self._finish(blocks, outcomes)

    def chunk_step_async(self, actions: Any, env_ids: Sequence[int]) -> None:
        """Start a chunk (len(env_ids), K, A) on the scenes holding `env_ids` (whole scenes) and return."""
        ids = [int(e) for e in env_ids]
        blocks = self._whole_blocks(ids)
        busy = {i for pending, _ in self._pending for i in self._blocks_of(pending)} & set(blocks)
        if busy:
            raise RuntimeError(f"GPU scenes {sorted(busy)} are still stepping a pending chunk; call chunk_step_wait() "
                               "first, or send chunks to other scenes (worker_env_ids() lists each scene's envs)")
        a = self._as_actions(actions, rows=len(ids))
        order = {e: row for row, e in enumerate(ids)}
        parts = [(i, a[[order[e] for e in self._blocks[i].env_ids]]) for i in blocks]
        future = self._threads[blocks[0]].submit(lambda: [self._run(i, part) for i, part in parts])
        self._pending.append((ids, future))

    def chunk_step_wait(self) -> ChunkStepResult:
        """Collect the oldest pending `chunk_step_async`: results for its env_ids only, in their order."""
        if not self._pending:
            raise RuntimeError("chunk_step_wait() without a pending chunk_step_async()")
        ids, future = self._pending.popleft()
        blocks = self._blocks_of(ids)
        result = self._finish(blocks, future.result())
        natural = [e for i in blocks for e in self._blocks[i].env_ids]
        if ids != natural:
            result = _reorder(result, [natural.index(e) for e in ids])
        return result

    @property
    def pending_chunks(self) -> int:
        """How many `chunk_step_async` calls await `chunk_step_wait`."""
        return len(self._pending)

    def worker_env_ids(self) -> list[list[int]]:
        """The env indices of each GPU scene (a scene is stepped as a whole)."""
        return [b.env_ids for b in self._blocks]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for pool in getattr(self, "_threads", []):
            pool.shutdown(wait=True)
        for block in self._blocks:
            with _SIM_LOCK:
                block.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # ------------------------------------------------------------------ internals
    def _blocks_of(self, env_ids: Sequence[int]) -> list[int]:
        return sorted({self._block_of[e] for e in env_ids})

    def _whole_blocks(self, ids: list[int]) -> list[int]:
        if not ids or len(set(ids)) != len(ids) or any(not 0 <= e < self.num_envs for e in ids):
            raise ValueError(f"env_ids={ids} must be distinct indices in [0, {self.num_envs})")
        blocks = self._blocks_of(ids)
        covered = sum(self._blocks[i].num_envs for i in blocks)
        if covered != len(ids):
            raise ValueError(f"env_ids={ids} cover part of a GPU scene; GPU physics steps a scene's envs together, so "
                             f"send whole scenes: {self.worker_env_ids()}")
        return blocks

    def _as_actions(self, actions: Any, rows: int, chunked: bool = True) -> torch.Tensor:
        if not all(b.started.all() for b in self._blocks):
            raise RuntimeError("call reset() before step()/chunk_step()")
        a = torch.as_tensor(actions, dtype=torch.float32).to(self.device)
        ndim = 3 if chunked else 2
        shape_ok = a.ndim == ndim and a.shape[0] == rows and a.shape[-1] == self.spec.action_dim
        if not shape_ok or (chunked and a.shape[1] < 1):
            want = (rows, "K", self.spec.action_dim) if chunked else (rows, self.spec.action_dim)
            raise ValueError(f"{'chunk_step' if chunked else 'step'} expects actions of shape {want}, got {tuple(a.shape)}")
        if not bool(torch.isfinite(a).all()):
            raise ValueError("actions contain NaN or inf")
        return a

    def _run(self, block: int, actions: torch.Tensor) -> ChunkOutcome:
        with _SIM_LOCK:
            return self._blocks[block].run_chunk(actions)

    def _reset_envs(self, env_ids: list[int], reset_ids: list[int]) -> None:
        by_block: dict[int, tuple[list[int], list[int]]] = {}
        for e, r in zip(env_ids, reset_ids):
            b = self._block_of[e]
            rows, ids = by_block.setdefault(b, ([], []))
            rows.append(e - self._blocks[b].start)
            ids.append(r)
        with _SIM_LOCK:
            for b, (rows, ids) in by_block.items():
                self._blocks[b].reset(rows, ids)

    def _observation(self, blocks: Sequence[int]) -> Obs:
        parts = [self._blocks[i].observation() for i in blocks]
        return _concat(parts)

    def _finish(self, blocks: list[int], outcomes: list[ChunkOutcome]) -> ChunkStepResult:
        """Episode statistics, auto-reset / fixed-length bookkeeping, and the result of these scenes' envs."""
        out = ChunkOutcome(*(torch.cat([getattr(o, f) for o in outcomes]) for f in ChunkOutcome.__dataclass_fields__))
        ended = out.ended.cpu().numpy()
        info = {
            "success": out.success.cpu().numpy(),
            "executed": out.executed.cpu().numpy(),
            "episode_done": ended.copy(),
            "episode_return": np.where(ended, out.ret.cpu().numpy(), 0.0).astype(np.float32),
            "episode_length": np.where(ended, out.length.cpu().numpy(), 0).astype(np.int64),
            "success_once": ended & out.success_once.cpu().numpy(),
            "success_at_end": ended & out.success_at_end.cpu().numpy(),
            "worker_failed": np.zeros(len(ended), dtype=bool),
        }
        env_ids = [e for i in blocks for e in self._blocks[i].env_ids]
        obs = self._observation(blocks)
        if self.auto_reset:
            info["final_obs"] = obs
            done = [e for e, d in zip(env_ids, ended) if d]
            if done:
                self._reset_envs(done, [self._next_id() for _ in done])
                obs = self._observation(blocks)
        else:
            offset = 0
            for i in blocks:
                b = self._blocks[i]
                b.book.done |= out.ended[offset:offset + b.num_envs]
                offset += b.num_envs
        info["reset_id"] = torch.cat([self._blocks[i].book.reset_id for i in blocks]).cpu().numpy()
        return ChunkStepResult(obs, out.reward, out.terminated, out.truncated, info)


def _concat(parts: list[Obs]) -> Obs:
    if len(parts) == 1:
        return parts[0]
    return {"images": {c: torch.cat([p["images"][c] for p in parts]) for c in parts[0]["images"]},
            "proprio": torch.cat([p["proprio"] for p in parts]),
            "instruction": [t for p in parts for t in p["instruction"]]}


def _reorder(result: ChunkStepResult, order: list[int]) -> ChunkStepResult:
    """The result's rows in `order` (chunks sent with env_ids not in scene order)."""
    def pick(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: pick(v) for k, v in x.items()}
        if isinstance(x, list):
            return [x[i] for i in order]
        return x[torch.as_tensor(order, device=x.device)] if isinstance(x, torch.Tensor) else x[order]

    info = {k: pick(v) for k, v in result.info.items()}
    return ChunkStepResult(pick(result.obs), pick(result.reward), pick(result.terminated), pick(result.truncated), info)


__all__ = ["ManiSkillGPUVectorEnv", "split_blocks"]
