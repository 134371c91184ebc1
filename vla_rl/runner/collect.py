"""Rollout collection: the policy acts, the environments step, the buffer records.

`collect_window` fills a (T, N) window from continuing environments (auto-reset, PPO style): a
truncated episode is bootstrapped from the value of its final observation (`Policy.value`, no
decoding), a terminated one is not.
`collect_episodes` runs fixed-length episodes from explicit reset ids (GRPO style), recording every
step until the longest episode of the batch has ended.

Both take the envs in k stages (contiguous env blocks) and share one loop (`_collect`): while the env
workers simulate one stage's chunk (`env.chunk_step_async`), the policy infers the next stage's
actions, so simulation and inference overlap when they run on different devices. A sequential rollout
is the one-stage case (`one_stage(env)`: act on all N, `env.chunk_step`, record). With k > 1 each stage
acts on its own N/k observations, so sampled actions differ from a sequential rollout's draws, not in
distribution.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from simulators.base import concat_obs, select_obs
from vla_rl.eval.episode_stats import EpisodeStats
from vla_rl.progress import progress_bar
from vla_rl.runner.buffer import RolloutBuffer


@dataclass
class Rollout:
    """What one collection hands the learner besides the filled buffer."""

    obs: dict[str, Any] | None
    """The observation the next window continues from (None after grouped episodes)."""
    stats: EpisodeStats
    """The episodes that finished, on every rank."""
    last_values: torch.Tensor | None
    """(N,) values of `obs` to bootstrap the window's tail (None after grouped episodes)."""
    policy_calls: int
    """Policy calls (chunks) recorded, on every rank: the filled steps times the envs."""


def _ended(flags: Any) -> torch.Tensor:
    """(N,) on the host: whether any step of each env's (N, K) chunk has this flag (flags may be on a GPU)."""
    return torch.as_tensor(flags).any(dim=1).cpu()


def _values_or_zeros(values: torch.Tensor | None, n: int) -> torch.Tensor:
    return values.float().cpu() if values is not None else torch.zeros(n)


def _values_of(policy, obs: dict[str, Any], n: int) -> torch.Tensor:
    """(n,) values of `obs` (zeros for a policy without a value head), from the policy's value call: no decoding."""
    return _values_or_zeros(policy.value(obs), n)


def _bootstrap(policy, out, result, n: int) -> torch.Tensor:
    """(n,) values that bootstrap the chunk's truncated episodes from their final observations (0 where an
    episode did not end, or ended by termination, or the policy has no value head)."""
    terminated = _ended(result.terminated)
    truncated = _ended(result.truncated) & ~terminated
    bootstrap = torch.zeros(n)
    if truncated.any() and out.values is not None:
        where = np.flatnonzero(truncated.numpy())
        bootstrap[where] = _values_of(policy, select_obs(result.info["final_obs"], where), len(where))
    return bootstrap


def _step_fields(out, result, n: int) -> dict[str, torch.Tensor]:
    """What the learner needs of one policy call and the chunk it executed: per-step (N, K) rewards
    and done flags (the algorithm layer reduces them to the configured reward granularity)."""
    return {
        "old_logprobs": out.logprobs.float(),
        "values": _values_or_zeros(out.values, n),
        "step_rewards": torch.as_tensor(result.reward, dtype=torch.float32),
        "step_terminated": torch.as_tensor(result.terminated, dtype=torch.bool),
        "step_truncated": torch.as_tensor(result.truncated, dtype=torch.bool),
    }


# ---------------------------------------------------------------------------------------------
# Stages: blocks of envs, the simulation of one overlapping the inference of the next.


def one_stage(env) -> list[range]:
    """The stages of a sequential rollout: one, of all envs."""
    return [range(env.num_envs)]


def check_stages(env, stages: Sequence[Sequence[int]]) -> None:
    """Stages must be contiguous blocks covering all envs in order, each on workers of its own."""
    flat = [e for stage in stages for e in stage]
    if flat != list(range(env.num_envs)):
        raise ValueError(f"pipeline stages {[list(s) for s in stages]} must split envs 0..{env.num_envs - 1} into "
                         "consecutive blocks")
    stage_of = {e: i for i, stage in enumerate(stages) for e in stage}
    for worker, envs in enumerate(env.worker_env_ids()):
        owners = {stage_of[e] for e in envs}
        if len(owners) > 1:
            raise ValueError(
                f"env worker {worker} holds envs {envs} of pipeline stages {sorted(owners)}, so those stages cannot "
                "be simulated apart; make env.num_workers a multiple of placement.pipeline_stages that divides "
                "env.num_envs (or leave it null and let the plan choose)")


@contextmanager
def _draining(env) -> Iterator[None]:
    """On an error, collect the chunks still in flight so the env can be used (or closed) afterwards."""
    try:
        yield
    except BaseException:
        while env.pending_chunks:
            try:
                env.chunk_step_wait()
            except Exception:  # noqa: BLE001 - the original error is the one to report
                break
        raise


class _Chunks:
    """Sends stages' chunks and collects them, oldest first: through the env's asynchronous chunks when there
    are several stages (one simulates while the policy infers the next), through `env.chunk_step` when there
    is one (nothing to overlap; the env needs no asynchronous chunks)."""

    def __init__(self, env, stages: Sequence[Sequence[int]]) -> None:
        self.env = env
        self.stepped: list[Any] | None = [] if len(stages) == 1 else None
        """One stage: the results of chunks already stepped, to hand out in order (None: asynchronous)."""

    def send(self, actions: Any, env_ids: Sequence[int]) -> None:
        if self.stepped is None:
            self.env.chunk_step_async(actions, env_ids)
        else:
            self.stepped.append(self.env.chunk_step(actions))

    def wait(self):
        return self.env.chunk_step_wait() if self.stepped is None else self.stepped.pop(0)


def _split(obs: dict[str, Any], index: list[np.ndarray]) -> list[dict[str, Any]]:
    """Each stage's rows of `obs` (one stage takes it whole, as the env returned it)."""
    return [obs] if len(index) == 1 else [select_obs(obs, i) for i in index]


def _join(parts: list[dict[str, Any]]) -> dict[str, Any]:
    return parts[0] if len(parts) == 1 else concat_obs(parts)


def _cat_fields(rows: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return rows[0] if len(rows) == 1 else {key: torch.cat([r[key] for r in rows]) for key in rows[0]}


def _collect(env, policy, buffer: RolloutBuffer, obs: dict[str, Any], temperature: float,
             stages: Sequence[Sequence[int]], progress: bool, record: Callable[[np.ndarray, Any, Any], dict],
             stop: Callable[[], bool]) -> tuple[list[dict[str, Any]], EpisodeStats]:
    """The loop of both collectors: fill `buffer` step by step from `obs`, by stages.

    Per step t, for each stage s in order: wait for its chunk t, record it (`record(env ids, act output,
    chunk result)` returns its buffer fields), infer its chunk t+1 and send it, so that stage s+1's chunk t
    is simulated while stage s is inferred. The last stage's chunk t+1 is sent only after `stop()` (asked
    once per step) said to go on; on a stop the other stages' chunks t+1 are collected and dropped. With one
    stage this is the sequential rollout: act, step, record, stop or act again. Returns each stage's
    observation after the last step and the finished episodes' statistics.
    """
    check_stages(env, stages)
    buffer.reset()
    stats = EpisodeStats()
    index = [np.asarray(stage) for stage in stages]
    parts, chunks, outs = _split(obs, index), _Chunks(env, stages), [None] * len(index)

    def send(s: int) -> None:
        outs[s] = policy.act(parts[s], mode="sample", temperature=temperature)
        chunks.send(outs[s].actions, index[s].tolist())

    with _draining(env):
        for s in range(len(index)):
            send(s)
        last = len(index) - 1
        for t in progress_bar(range(buffer.steps), desc="rollout", enabled=progress):
            inputs, fields = [], []
            for s, i in enumerate(index):
                result = chunks.wait()
                inputs.append(outs[s].forward_inputs)
                fields.append(record(i, outs[s], result))
                stats.add_finished(result.info)
                parts[s] = result.obs
                if s < last and t + 1 < buffer.steps:
                    send(s)
            buffer.add(_cat_fields(inputs), **_cat_fields(fields))
            if stop():
                while env.pending_chunks:
                    env.chunk_step_wait()
                break
            if t + 1 < buffer.steps:
                send(last)
    return parts, stats


@torch.no_grad()
def collect_window(env, policy, buffer: RolloutBuffer, obs: dict[str, Any], temperature: float,
                   stages: Sequence[Sequence[int]], progress: bool = True
                   ) -> tuple[dict[str, Any], EpisodeStats, torch.Tensor]:
    """Fill `buffer` with T steps from continuing environments starting at `obs`, by `stages`.

    Returns the observation after the window, the finished episodes' stats, and the value of that
    observation (N,) for bootstrapping the window's tail.
    """
    def record(i, out, result):
        return {"bootstrap_values": _bootstrap(policy, out, result, len(i)), **_step_fields(out, result, len(i))}

    parts, stats = _collect(env, policy, buffer, obs, temperature, stages, progress, record, stop=lambda: False)
    values = [_values_of(policy, part, len(stage)) for part, stage in zip(parts, stages)]
    return _join(parts), stats, torch.cat(values)


@torch.no_grad()
def collect_episodes(env, policy, buffer: RolloutBuffer, reset_ids: Sequence[int], temperature: float,
                     stages: Sequence[Sequence[int]], progress: bool = True,
                     all_ended: Callable[[bool], bool] = bool) -> EpisodeStats:
    """Run one fixed-length episode per environment from `reset_ids`, recording up to T steps, by `stages`.

    The environment must have auto-reset off: after an episode ends its environment ignores actions
    and reports zero reward; `done` marks each step at or after the episode's end. Recording stops
    early once `all_ended(every episode here has ended)` (data-parallel ranks pass a collective, so
    all stop at the step the slowest rank's episodes end, as one process over all envs would).
    """
    ended = torch.zeros(env.num_envs, dtype=torch.bool)

    def record(i, out, result):
        ended[torch.as_tensor(i)] |= _ended(result.terminated) | _ended(result.truncated)
        return _step_fields(out, result, len(i))

    obs = env.reset(reset_ids=list(reset_ids))
    _, stats = _collect(env, policy, buffer, obs, temperature, stages, progress, record,
                        stop=lambda: all_ended(bool(ended.all())))
    return stats
