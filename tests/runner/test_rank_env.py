"""`RankEnv` hands reset ids out across data-parallel ranks exactly as one process over all envs does.

A fake vectorised env whose episode length follows from its reset id (1 + id % 3 chunks) stands in
for the simulator; two ranks run in threads over a thread-barrier collective. Over several chunks
with auto-reset, every (chunk, env) pair must carry the reset id the single-process env gives it,
each id is used once, and the cursor ends where the single-process one does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from placement.collective import Collective
from placement.rank_env import RankEnv

N, WORLD, CHUNKS = 4, 2, 7


@dataclass
class Result:
    obs: Any
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    info: dict[str, Any]


class FakeEnv:
    """Episodes last 1 + reset_id % 3 chunks; auto-reset hands ids from a cursor, in env order."""

    def __init__(self, num_envs: int, seed: int = 0) -> None:
        self.num_envs, self.auto_reset, self._cursor = num_envs, True, seed
        self.ids = [-1] * num_envs
        self.left = [0] * num_envs

    def get_reset_cursor(self) -> int:
        return self._cursor

    def set_reset_cursor(self, cursor: int) -> None:
        self._cursor = cursor

    def _start(self, env: int, rid: int) -> None:
        self.ids[env], self.left[env] = rid, 1 + rid % 3

    def _obs(self):
        return {"ids": list(self.ids)}

    def reset(self, reset_ids=None, env_ids=None):
        envs = list(range(self.num_envs)) if env_ids is None else list(env_ids)
        if reset_ids is None:
            reset_ids = list(range(self._cursor, self._cursor + len(envs)))
            self._cursor += len(envs)
        for env, rid in zip(envs, reset_ids):
            self._start(env, rid)
        return self._obs()

    def chunk_step(self, actions):
        self.left = [n - 1 for n in self.left]
        done = np.array([n == 0 for n in self.left])
        info = {"episode_done": done, "reset_id": np.array(self.ids)}
        final = self._obs()
        if self.auto_reset:
            for env in np.flatnonzero(done):
                self._start(int(env), self._cursor)
                self._cursor += 1
            info["final_obs"], info["reset_id"] = final, np.array(self.ids)
        zeros = np.zeros((self.num_envs, 1))
        return Result(self._obs(), zeros, zeros.astype(bool), done[:, None], info)


class ThreadComm(Collective):
    """`gather` over threads (one per rank) sharing a barrier."""

    def __init__(self, rank: int, board: list, barrier: threading.Barrier) -> None:
        self.rank, self.world, self._board, self._barrier = rank, len(board), board, barrier

    def gather(self, obj):
        self._board[self.rank] = obj
        self._barrier.wait()
        out = list(self._board)
        self._barrier.wait()
        return out


def single_process() -> tuple[list[list[int]], int]:
    env = FakeEnv(N)
    rows = [env.reset()["ids"]]
    for _ in range(CHUNKS):
        rows.append(list(env.chunk_step(None).info["reset_id"]))
    return rows, env.get_reset_cursor()


def test_ranks_use_the_single_process_reset_ids():
    expected, cursor = single_process()
    board, barrier = [None] * WORLD, threading.Barrier(WORLD)
    rows: list[list[list[int]]] = [[] for _ in range(WORLD)]
    cursors = [0] * WORLD
    m = N // WORLD

    def run(rank: int) -> None:
        env = RankEnv(FakeEnv(m), ThreadComm(rank, board, barrier), first_env=rank * m, total_envs=N)
        rows[rank].append(env.reset()["ids"])
        for _ in range(CHUNKS):
            result = env.chunk_step(None)
            assert list(result.obs["ids"]) == list(result.info["reset_id"])
            rows[rank].append(list(result.info["reset_id"]))
        cursors[rank] = env.get_reset_cursor()

    threads = [threading.Thread(target=run, args=(r,)) for r in range(WORLD)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    combined = [rows[0][step] + rows[1][step] for step in range(CHUNKS + 1)]
    assert combined == expected
    assert cursors == [cursor] * WORLD
    used = sorted({rid for row in expected for rid in row})
    assert used == list(range(cursor))  # every id handed out once, none skipped
