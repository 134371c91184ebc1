"""Rollout collection: the policy acts, the environments step, the buffer records.

`collect_window` fills a (T, N) window from continuing environments (auto-reset, PPO style): a
truncated episode is bootstrapped from the value of its final observation (`Policy.value`, no
decoding), a terminated one is not.
`collect_episodes` runs fixed-length episodes from explicit reset ids (GRPO style), recording every
step until the longest episode of the batch has ended.

`collect_window_pipelined` and `collect_episodes_pipelined` fill the same buffer with the same
contract, with the envs split into k stages (contiguous env blocks): while the env workers simulate
one stage's chunk (`env.chunk_step_async`), the policy infers the next stage's actions, so
simulation and inference overlap when they run on different devices. Each stage acts on its own
N/k observations, so sampled actions differ from a sequential rollout's draws, not in distribution.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from simulators.base import concat_obs, select_obs
from vla_rl.progress import progress_bar
from vla_rl.runner.buffer import RolloutBuffer


@dataclass
class Rollout:
    """What one collection hands the learner besides the filled buffer."""

    obs: dict[str, Any] | None
    """The observation the next window continues from (None after grouped episodes)."""
    stats: "EpisodeStats"
    """The episodes that finished, on every rank."""
    last_values: torch.Tensor | None
    """(N,) values of `obs` to bootstrap the window's tail (None after grouped episodes)."""
    policy_calls: int
    """Policy calls (chunks) recorded, on every rank: the filled steps times the envs."""


def _ended(flags: Any) -> torch.Tensor:
    """(N,) on the host: whether any step of each env's (N, K) chunk has this flag (flags may be on a GPU)."""
    return torch.as_tensor(flags).any(dim=1).cpu()


@dataclass
class EpisodeStats:
    """Finished-episode statistics gathered during one collection."""

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)

    @classmethod
    def merge(cls, parts: Sequence["EpisodeStats"]) -> "EpisodeStats":
        """The statistics of several collections (in order)."""
        merged = cls()
        for part in parts:
            merged.returns += part.returns
            merged.lengths += part.lengths
            merged.successes += part.successes
        return merged

    def add(self, info: dict[str, Any]) -> None:
        done = np.asarray(info.get("episode_done", []), dtype=bool)
        for i in np.flatnonzero(done):
            self.returns.append(float(info["episode_return"][i]))
            self.lengths.append(int(info["episode_length"][i]))
            self.successes.append(bool(info["success_once"][i]))

    def metrics(self, prefix: str) -> dict[str, float]:
        if not self.returns:
            return {f"{prefix}/episodes": 0.0}
        return {
            f"{prefix}/episodes": float(len(self.returns)),
            f"{prefix}/success_rate": float(np.mean(self.successes)),
            f"{prefix}/episode_return": float(np.mean(self.returns)),
            f"{prefix}/episode_length": float(np.mean(self.lengths)),
        }


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


@torch.no_grad()
def collect_window(env, policy, buffer: RolloutBuffer, obs: dict[str, Any], temperature: float,
                   progress: bool = True) -> tuple[dict[str, Any], EpisodeStats, torch.Tensor]:
    """Fill `buffer` with T steps from continuing environments starting at `obs`.

    Returns the observation after the window, the finished episodes' stats, and the value of that
    observation (N,) for bootstrapping the window's tail.
    """
    buffer.reset()
    stats = EpisodeStats()
    n = env.num_envs
    for _ in progress_bar(range(buffer.steps), desc="rollout", enabled=progress):
        out = policy.act(obs, mode="sample", temperature=temperature)
        result = env.chunk_step(out.actions)
        buffer.add(out.forward_inputs, bootstrap_values=_bootstrap(policy, out, result, n),
                   **_step_fields(out, result, n))
        stats.add(result.info)
        obs = result.obs
    return obs, stats, _values_of(policy, obs, n)


@torch.no_grad()
def collect_episodes(env, policy, buffer: RolloutBuffer, reset_ids: Sequence[int], temperature: float,
                     progress: bool = True, all_ended: Callable[[bool], bool] = bool) -> EpisodeStats:
    """Run one fixed-length episode per environment from `reset_ids`, recording T steps.

    The environment must have auto-reset off: after an episode ends its environment ignores actions
    and reports zero reward; `done` marks each step at or after the episode's end. Recording stops
    early once `all_ended(every episode here has ended)` (data-parallel ranks pass a collective, so
    all stop at the step the slowest rank's episodes end, as one process over all envs would).
    """
    buffer.reset()
    stats = EpisodeStats()
    n = env.num_envs
    obs = env.reset(reset_ids=list(reset_ids))
    ended = torch.zeros(n, dtype=torch.bool)
    for _ in progress_bar(range(buffer.steps), desc="rollout", enabled=progress):
        out = policy.act(obs, mode="sample", temperature=temperature)
        result = env.chunk_step(out.actions)
        done_now = _ended(result.terminated) | _ended(result.truncated)
        buffer.add(out.forward_inputs, **_step_fields(out, result, n))
        stats.add(result.info)
        ended |= done_now
        obs = result.obs
        if all_ended(bool(ended.all())):  # every episode is over: the remaining steps would all be masked
            break
    return stats


# ---------------------------------------------------------------------------------------------
# Pipelined collection: k stages of envs, simulation of one overlapping inference of another.


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


def _cat_fields(rows: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {key: torch.cat([r[key] for r in rows]) for key in rows[0]}


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


@torch.no_grad()
def collect_window_pipelined(env, policy, buffer: RolloutBuffer, obs: dict[str, Any], temperature: float,
                             stages: Sequence[Sequence[int]], progress: bool = True
                             ) -> tuple[dict[str, Any], EpisodeStats, torch.Tensor]:
    """`collect_window` with the envs in k pipeline stages; same buffer contract and return values.

    Schedule per window step t: for each stage s in order, wait for its chunk t, record it, infer its
    chunk t+1 and send it, so stage s+1's chunk t is simulated while stage s is inferred.
    """
    check_stages(env, stages)
    buffer.reset()
    stats = EpisodeStats()
    index = [np.asarray(stage) for stage in stages]
    stage_obs = [select_obs(obs, i) for i in index]
    last_values: list[torch.Tensor] = [torch.zeros(len(i)) for i in index]
    with _draining(env):
        outs = []
        for s, i in enumerate(index):
            outs.append(policy.act(stage_obs[s], mode="sample", temperature=temperature))
            env.chunk_step_async(outs[s].actions, i.tolist())
        for t in progress_bar(range(buffer.steps), desc="rollout", enabled=progress):
            inputs, fields = [], []
            for s, i in enumerate(index):
                result, out, m = env.chunk_step_wait(), outs[s], len(i)
                inputs.append(out.forward_inputs)
                fields.append({"bootstrap_values": _bootstrap(policy, out, result, m), **_step_fields(out, result, m)})
                stats.add(result.info)
                stage_obs[s] = result.obs
                if t + 1 < buffer.steps:
                    outs[s] = policy.act(stage_obs[s], mode="sample", temperature=temperature)
                    env.chunk_step_async(outs[s].actions, i.tolist())
                else:
                    last_values[s] = _values_of(policy, stage_obs[s], m)
            buffer.add(_cat_fields(inputs), **_cat_fields(fields))
    return concat_obs(stage_obs), stats, torch.cat(last_values)


@torch.no_grad()
def collect_episodes_pipelined(env, policy, buffer: RolloutBuffer, reset_ids: Sequence[int], temperature: float,
                               stages: Sequence[Sequence[int]], progress: bool = True) -> EpisodeStats:
    """`collect_episodes` with the envs in k pipeline stages; same buffer contract.

    Records steps until every episode has ended (as the sequential version does); a stage's chunk
    already sent for the step after the last one is collected and dropped.
    """
    check_stages(env, stages)
    buffer.reset()
    stats = EpisodeStats()
    index = [np.asarray(stage) for stage in stages]
    obs = env.reset(reset_ids=list(reset_ids))
    ended = torch.zeros(env.num_envs, dtype=torch.bool)
    with _draining(env):
        outs = []
        for i in index:
            outs.append(policy.act(select_obs(obs, i), mode="sample", temperature=temperature))
            env.chunk_step_async(outs[-1].actions, i.tolist())
        for t in progress_bar(range(buffer.steps), desc="rollout", enabled=progress):
            inputs, fields = [], []
            for s, i in enumerate(index):
                result, out = env.chunk_step_wait(), outs[s]
                done_now = _ended(result.terminated) | _ended(result.truncated)
                ended[torch.as_tensor(i)] |= done_now
                inputs.append(out.forward_inputs)
                fields.append(_step_fields(out, result, len(i)))
                stats.add(result.info)
                if t + 1 < buffer.steps:
                    outs[s] = policy.act(result.obs, mode="sample", temperature=temperature)
                    env.chunk_step_async(outs[s].actions, i.tolist())
            buffer.add(_cat_fields(inputs), **_cat_fields(fields))
            if bool(ended.all()):  # every episode is over: drop the chunks already sent for step t+1
                while env.pending_chunks:
                    env.chunk_step_wait()
                break
    return stats
