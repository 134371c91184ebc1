"""The vectorised environment contract every simulator backend implements.

One `VectorEnv` object steps N environments. Everything crossing this boundary is plain numpy on
the host (a GPU backend may later hand over torch tensors with the same shapes):

Observation (`Obs`, a dict):
    "images":      {camera_name: uint8 array (N, H, W, 3)}; "main" is the third-person view,
                   "wrist" the wrist camera when the backend has one.
    "proprio":     float32 array (N, P), the robot state the backend declares (`EnvSpec.proprio_dim`).
    "instruction": list of N language instructions.

Actions are float32 arrays in the backend's action space, (N, A) for `step` and (N, K, A) for
`chunk_step`. Converting a policy's normalised output (gripper conventions, scaling) into this space
is the policy's action codec's job, configured per backend through `EnvSpec`.

Episodes end by `terminated` (task success or failure the task defines) or `truncated` (time limit).
With `auto_reset=True` (PPO-style partial reset), a finished environment is reset right after the
step (or chunk) with the next reset id from the environment's cursor; its last observation is kept
in `info["final_obs"]` so the learner can bootstrap a truncated episode. With `auto_reset=False`
(fixed-length episodes, GRPO-style) a finished environment stays finished: further actions are
ignored, its reward is 0, and `done` stays true until the next explicit `reset`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

Obs = dict[str, Any]


def select_obs(obs: Obs, index: Sequence[int] | np.ndarray) -> Obs:
    """The observation of a subset of environments (rows `index`, in that order)."""
    return {
        "images": {cam: img[index] for cam, img in obs["images"].items()},
        "proprio": obs["proprio"][index],
        "instruction": [obs["instruction"][i] for i in index],
    }


def _cat_rows(arrays: Sequence[Any]) -> Any:
    """Rows of numpy arrays, or of torch tensors kept on their device (a GPU backend's observations)."""
    if type(arrays[0]).__module__.startswith("torch"):
        import torch

        return torch.cat(list(arrays))
    return np.concatenate(arrays)


def concat_obs(parts: Sequence[Obs]) -> Obs:
    """One observation from the observations of consecutive env blocks (inverse of `select_obs`)."""
    return {
        "images": {cam: _cat_rows([p["images"][cam] for p in parts]) for cam in parts[0]["images"]},
        "proprio": _cat_rows([p["proprio"] for p in parts]),
        "instruction": [text for p in parts for text in p["instruction"]],
    }


@dataclass(frozen=True)
class EnvSpec:
    """What a backend declares about one task: the protocol the rest of the platform relies on."""

    backend: str
    """Registered backend name, e.g. "maniskill" or "libero"."""
    task: str
    """Task id inside the backend (or suite/task id for LIBERO)."""
    action_dim: int
    """Size of one action vector (7 for end-effector delta pose + gripper)."""
    control_hz: float
    """Control frequency of one `step`."""
    max_episode_steps: int
    """Steps after which an episode is truncated."""
    cameras: tuple[str, ...]
    """Camera names present in `obs["images"]`."""
    image_size: tuple[int, int]
    """(height, width) of every image."""
    proprio_dim: int
    """Size of `obs["proprio"]` per environment."""
    action_low: tuple[float, ...] = ()
    """Lower bound of each action dimension (empty: unbounded)."""
    action_high: tuple[float, ...] = ()
    """Upper bound of each action dimension (empty: unbounded)."""
    gripper_convention: str = "close_positive"
    """How the backend reads the last action dim: "open_positive" (+1 opens) or "close_positive"."""
    reward_mode: str = "sparse"
    """"sparse" (1 on success) or "dense" (the task's shaped reward)."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Backend-specific facts worth logging (renderer, physics backend, protocol details)."""


@dataclass
class StepResult:
    """What `step` returns for N environments."""

    obs: Obs
    reward: np.ndarray
    """float32 (N,)."""
    terminated: np.ndarray
    """bool (N,)."""
    truncated: np.ndarray
    """bool (N,)."""
    info: dict[str, Any]
    """Always "success" bool (N,) (success at this step). When an episode ended in this step:
    "episode_done" bool (N,) and, for those envs, "episode_return", "episode_length",
    "success_once", "success_at_end" arrays (N,) (valid where episode_done). With auto-reset,
    "final_obs" holds the pre-reset observation of every env (only meaningful where done).
    Subprocess backends add "executed" bool (N,) (the action was applied: false for a finished env
    in fixed-length mode), "reset_id" int (N,) (the episode each env is in after the call) and
    "worker_failed" bool (N,) (the env's worker died or hung; its episode ended truncated)."""


@dataclass
class ChunkStepResult:
    """What `chunk_step` returns after executing K actions per environment."""

    obs: Obs
    reward: np.ndarray
    """float32 (N, K): reward of each executed step, 0 for steps skipped after an episode ended."""
    terminated: np.ndarray
    """bool (N, K): true from the step the episode ended to the end of the chunk."""
    truncated: np.ndarray
    """bool (N, K): as `terminated`, for the time limit."""
    info: dict[str, Any]
    """As in StepResult, aggregated over the chunk (episode stats of episodes that ended in it;
    "success" at the last executed step; "executed" is (N, K))."""


class VectorEnv(abc.ABC):
    """N environments of one task behind one object. See the module docstring for the contract."""

    spec: EnvSpec
    num_envs: int
    auto_reset: bool
    """Public and switchable between phases: the runner evaluates on the training env by setting it
    to False (fixed-length episodes), then restores it and calls `reset`."""
    one_env_per_worker: bool = False
    """Class fact for placement: each env needs a worker process of its own (the plan then gives N workers)."""

    @abc.abstractmethod
    def reset(self, reset_ids: Sequence[int] | None = None, env_ids: Sequence[int] | None = None) -> Obs:
        """Reset environments `env_ids` (all when None) to the states named by `reset_ids`.

        A reset id is a seed (ManiSkill) or an init-state index (LIBERO); equal ids give identical
        first observations, so a GRPO group starts from one state. When `reset_ids` is None the ids
        come from the environment's reset cursor. Returns the observation of all N environments.
        """

    @abc.abstractmethod
    def step(self, actions: np.ndarray) -> StepResult:
        """Apply one action (N, A) to every environment."""

    @abc.abstractmethod
    def chunk_step(self, actions: np.ndarray) -> ChunkStepResult:
        """Apply an action chunk (N, K, A): K steps, stopping early per environment when it ends."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release processes and renderers."""

    # Reset cursor: auto-reset and `reset(None)` draw ids from it; it is part of a checkpoint.
    @abc.abstractmethod
    def get_reset_cursor(self) -> int:
        """The next reset id the cursor will hand out."""

    @abc.abstractmethod
    def set_reset_cursor(self, cursor: int) -> None:
        """Continue handing out reset ids from `cursor` (exact resume)."""

    def next_group_ids(self, group_size: int) -> list[int]:
        """Reset ids for one batch of fixed-length grouped episodes: each `group_size` consecutive envs share the
        cursor's next id; the cursor moves past the batch's ids."""
        ids, cursor = group_ids(self.get_reset_cursor(), 0, self.num_envs, self.num_envs, group_size)
        self.set_reset_cursor(cursor)
        return ids

    # Asynchronous chunks (pipelined rollouts). A backend without them steps all envs in `chunk_step`.
    def chunk_step_async(self, actions: Any, env_ids: Sequence[int]) -> None:
        """Start a chunk (len(env_ids), K, A) on the envs `env_ids` (whole workers, `worker_env_ids`) and return;
        `chunk_step_wait` collects it. Several may be pending when they touch disjoint workers."""
        raise NotImplementedError(f"{type(self).__name__} has no asynchronous chunks (chunk_step_async); "
                                  "set placement.pipeline_stages=1")

    def chunk_step_wait(self) -> ChunkStepResult:
        """Collect the oldest pending `chunk_step_async`: results for its env_ids only, in their order."""
        raise NotImplementedError(f"{type(self).__name__} has no asynchronous chunks (chunk_step_wait); "
                                  "set placement.pipeline_stages=1")

    @property
    def pending_chunks(self) -> int:
        """How many `chunk_step_async` calls await `chunk_step_wait` (0 for a backend without them)."""
        return 0

    # Workers: which envs are stepped together, and where their processes run.
    def worker_env_ids(self) -> list[list[int]]:
        """The env indices each worker holds (a worker steps its envs together); by default one worker holds all."""
        return [list(range(self.num_envs))]

    def pin_workers(self, cores: Sequence[int] | None) -> None:
        """Pin the env worker processes to `cores` (None: unpin). A backend without worker processes has none
        to pin: a no-op."""

    # Simulator snapshots (privileged state for scripted demos; not bit-exact, see placement/replay_env.py).
    def get_state(self, env_ids: Sequence[int] | None = None) -> list[Any]:
        """Snapshots of envs `env_ids` (all when None), for `set_state`."""
        raise NotImplementedError(f"{type(self).__name__} has no state snapshots (get_state); use a backend "
                                  "with them (env.backend=maniskill or libero)")

    def set_state(self, states: Sequence[Any], env_ids: Sequence[int] | None = None) -> Obs:
        """Restore snapshots from `get_state` into `env_ids` (all when None); returns all observations."""
        raise NotImplementedError(f"{type(self).__name__} has no state snapshots (set_state); use a backend "
                                  "with them (env.backend=maniskill or libero)")

    def __enter__(self) -> "VectorEnv":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def group_ids(cursor: int, first_env: int, num_envs: int, total_envs: int, group_size: int) -> tuple[list[int], int]:
    """Envs [first_env, first_env + num_envs) of a batch of `total_envs` in groups of `group_size`: their reset
    ids (group g gets cursor + g) and the cursor after the batch."""
    return [cursor + (first_env + i) // group_size for i in range(num_envs)], cursor + total_envs // group_size


class ResetCursor:
    """The reset-id cursor of a vectorised env (reset ids are handed out in order from `seed`); a
    class that mixes it in sets `self._cursor` and takes ids from it."""

    _cursor: int

    def get_reset_cursor(self) -> int:
        """The next reset id the cursor will hand out."""
        return self._cursor

    def set_reset_cursor(self, cursor: int) -> None:
        """Continue handing out reset ids from `cursor` (exact resume)."""
        if cursor < 0:
            raise ValueError(f"reset cursor must be >= 0, got {cursor}")
        self._cursor = int(cursor)

    def _next_id(self) -> int:
        """Hand out the next reset id."""
        rid = self._cursor
        self._cursor += 1
        return rid


class PendingChunks:
    """The refusal an env with asynchronous chunks (`chunk_step_async`) shares: calls other than
    `chunk_step_wait` do not run while a chunk is pending; a class that mixes it in keeps them in
    `self._pending`."""

    _pending: Any

    def _refuse_while_pending(self, what: str) -> None:
        if self._pending:
            raise RuntimeError(f"{what}() while {len(self._pending)} chunk_step_async() call(s) are pending; "
                               "collect them with chunk_step_wait() first")
