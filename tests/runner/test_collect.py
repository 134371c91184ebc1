"""The one collector loop, on an in-process counting env and policy (no simulator, no model).

A sequential rollout is the one-stage case: it steps with `chunk_step` (an env without asynchronous chunks
runs it), acts exactly once per recorded step (no chunk is inferred after every episode has ended, so the
random stream is the sequential one's) and asks `all_ended` once per step. Two stages fill the same buffer.
"""

from __future__ import annotations

import numpy as np
import torch

from simulators.base import ChunkStepResult, ResetCursor, VectorEnv
from vla_rl.models.base import ActOutput
from vla_rl.runner.buffer import RolloutBuffer
from vla_rl.runner.collect import collect_episodes, collect_window, one_stage


class CountingEnv(ResetCursor, VectorEnv):
    """N envs whose state is the steps taken since reset; env e's episodes are truncated after 2 + e steps.
    Asynchronous chunks step at once and are handed back in order (enough for stages of in-process envs)."""

    def __init__(self, num_envs: int, asynchronous: bool = True) -> None:
        self.num_envs, self.auto_reset, self._cursor = num_envs, True, 0
        self.t = np.zeros(num_envs, dtype=np.int64)
        self.done = np.zeros(num_envs, dtype=bool)
        self.asynchronous, self._pending = asynchronous, []

    def _obs(self, rows=slice(None)):
        t = self.t[rows]
        return {"images": {}, "proprio": t[:, None].astype(np.float32), "instruction": [""] * len(t)}

    def reset(self, reset_ids=None, env_ids=None):
        self.t[:], self.done[:] = 0, False
        return self._obs()

    def step(self, actions):
        raise NotImplementedError

    def chunk_step(self, actions, env_ids=None):
        ids = np.arange(self.num_envs) if env_ids is None else np.asarray(env_ids)
        live = ~self.done[ids]
        self.t[ids] += live
        ended = live & (self.t[ids] >= 2 + ids)
        info = {"episode_done": ended, "episode_return": self.t[ids].astype(np.float32),
                "episode_length": self.t[ids].copy(), "success_once": np.zeros(len(ids), dtype=bool),
                "final_obs": self._obs(ids)}
        if self.auto_reset:
            self.t[ids[ended]] = 0
        else:
            self.done[ids] |= ended
        return ChunkStepResult(obs=self._obs(ids), reward=live[:, None].astype(np.float32),
                               terminated=np.zeros((len(ids), 1), dtype=bool),
                               truncated=(ended | self.done[ids])[:, None], info=info)

    def chunk_step_async(self, actions, env_ids):
        if not self.asynchronous:
            return super().chunk_step_async(actions, env_ids)
        self._pending.append(self.chunk_step(actions, env_ids))

    def chunk_step_wait(self):
        return self._pending.pop(0)

    @property
    def pending_chunks(self) -> int:
        return len(self._pending)

    def worker_env_ids(self):
        return [[e] for e in range(self.num_envs)]

    def close(self) -> None:
        pass


class CountingPolicy:
    """Acts from the observation alone; counts its calls per batch size and draws one random number each."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def act(self, obs, mode="sample", temperature=1.0):
        self.calls.append(len(obs["instruction"]))
        torch.rand(1)
        proprio = torch.as_tensor(obs["proprio"])
        return ActOutput(actions=np.zeros((len(proprio), 1, 1), np.float32), forward_inputs={"proprio": proprio},
                         logprobs=-proprio[:, :, None], values=self.value(obs))

    def value(self, obs):
        return torch.as_tensor(obs["proprio"])[:, 0] + 0.5


def _episodes(env, stages):
    policy, asked = CountingPolicy(), []
    buffer = RolloutBuffer(6, env.num_envs)
    env.auto_reset = False

    def all_ended(flag: bool) -> bool:
        asked.append(flag)
        return flag

    stats = collect_episodes(env, policy, buffer, [0] * env.num_envs, 1.0, stages, progress=False,
                             all_ended=all_ended)
    return buffer, stats, policy.calls, asked


def test_one_stage_acts_once_per_recorded_step_and_needs_no_async_chunks():
    env = CountingEnv(3, asynchronous=False)
    buffer, stats, calls, asked = _episodes(env, one_stage(env))
    assert buffer.t == 4  # env 2's episode is truncated at its 4th step: every episode has ended
    assert calls == [3] * 4 and asked == [False, False, False, True]
    assert sorted(stats.lengths) == [2, 3, 4]


def test_two_stages_record_the_same_episodes_and_drop_only_the_first_stage_chunk_in_flight():
    one, one_stats, _, _ = _episodes(CountingEnv(4), [range(4)])
    env = CountingEnv(4)
    two, two_stats, calls, asked = _episodes(env, [range(2), range(2, 4)])
    assert one.t == two.t == 5 and asked == [False] * 4 + [True] and env.pending_chunks == 0
    assert calls == [2, 2] + [2, 2] * 4 + [2]  # stage 0's chunk for step 6 was sent, stage 1's was not
    for key in ("step_rewards", "step_truncated", "old_logprobs"):
        torch.testing.assert_close(two.view(key), one.view(key), rtol=0, atol=0)
    assert sorted(two_stats.lengths) == sorted(one_stats.lengths)


def test_two_stage_window_equals_the_one_stage_window():
    runs = []
    for stages in ([range(4)], [range(2), range(2, 4)]):
        env, buffer = CountingEnv(4), RolloutBuffer(5, 4)
        obs, stats, last = collect_window(env, CountingPolicy(), buffer, env.reset(), 1.0, stages, progress=False)
        runs.append((buffer, obs, stats, last))
    (one, one_obs, one_stats, one_last), (two, two_obs, two_stats, two_last) = runs
    for key in ("step_rewards", "step_truncated", "values", "bootstrap_values"):
        torch.testing.assert_close(two.view(key), one.view(key), rtol=0, atol=0)
    assert bool((one.view("bootstrap_values") != 0).any())  # the window crossed truncations
    np.testing.assert_array_equal(two_obs["proprio"], one_obs["proprio"])
    torch.testing.assert_close(two_last, one_last, rtol=0, atol=0)
    assert sorted(two_stats.lengths) == sorted(one_stats.lengths)
