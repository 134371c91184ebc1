"""Evaluation protocols and sharding: every LIBERO (task, init state) is run exactly once, each env
works through one contiguous block, and the order matches `evaluate_policy`'s rounds."""

from __future__ import annotations

import pytest

from vla_rl.config.loader import load_config
from vla_rl.eval.manifest import eval_protocol, protocol_order, round_order, shard_ids, shard_order


def _rounds(order: list[int], num_envs: int) -> list[list[int]]:
    """What each env runs when `evaluate_policy` hands out `order` in rounds of num_envs (no padding)."""
    per_env = [[] for _ in range(num_envs)]
    for first in range(0, len(order), num_envs):
        for i, rid in enumerate(order[first:first + num_envs]):
            per_env[i].append(rid)
    return per_env


@pytest.mark.parametrize("suite,tasks", [("libero_spatial", 10), ("libero_10", 10), ("libero_spatial/3", 1)])
@pytest.mark.parametrize("num_envs", [1, 3, 8])
def test_libero_benchmark_protocol_covers_every_init_state_once(suite, tasks, num_envs):
    config = load_config("quickstart_ppo", ["env.backend=libero", f"env.task={suite}", "env.reward_mode=sparse",
                                "env.cameras=[main]", "model.family=openvla"])
    protocol = eval_protocol(config, "benchmark")
    assert len(protocol.reset_ids) == 50 * tasks
    assert sorted(protocol.init_states) == [(t, s) for t in range(tasks) for s in range(50)]
    order = protocol_order(protocol, num_envs)
    assert sorted(order) == sorted(protocol.reset_ids)  # each episode once, none missed
    per_env = _rounds(order, num_envs)
    pairs = dict(zip(protocol.reset_ids, protocol.init_states))
    sizes = [len(s) for s in per_env]
    assert max(sizes) - min(sizes) <= 1
    for block in per_env:  # one env walks through its block task by task, init state by init state
        keys = [pairs[r] for r in block]
        assert keys == sorted(keys)
    tasks_per_env = [len({pairs[r][0] for r in block}) for block in per_env]
    assert max(tasks_per_env) <= -(-tasks // num_envs) + 1  # few scene rebuilds per env
    assert "50 fixed init states" in protocol.description and "step limit" in protocol.description


def test_maniskill_protocol_is_the_runs_eval_seeds():
    config = load_config("quickstart_ppo", ["runner.eval_episodes=7", "runner.eval_seed=123", "env.spawn_scale=1.0"])
    protocol = eval_protocol(config, "benchmark")
    assert protocol.reset_ids == tuple(range(123, 130)) and not protocol.init_states
    assert sorted(protocol_order(protocol, 2)) == list(range(123, 130))
    assert "spawn_scale" not in protocol.description
    shrunk = load_config("quickstart_ppo", ["env.task=PushCube-v1", "env.spawn_scale=0.25"])
    assert "env.spawn_scale=0.25" in eval_protocol(shrunk, "benchmark").description


@pytest.mark.parametrize("n,shards", [(0, 3), (1, 4), (10, 3), (50, 7), (500, 8)])
def test_shards_are_balanced_contiguous_and_exact(n, shards):
    ids = list(range(1000, 1000 + n))
    blocks = shard_ids(ids, shards)
    assert sum(blocks, []) == ids
    sizes = [len(b) for b in blocks]
    assert sizes == sorted(sizes, reverse=True) and (not ids or sizes[0] - sizes[-1] <= 1)
    assert _rounds(round_order(blocks), shards)[:len(blocks)] == [b for b in blocks] or n == 0


def test_duplicate_ids_and_bad_shard_counts_are_refused():
    with pytest.raises(ValueError, match="distinct"):
        shard_order([1, 2, 2], 2)
    with pytest.raises(ValueError, match="num_shards"):
        shard_ids([1], 0)
    with pytest.raises(ValueError, match="non-increasing"):
        round_order([[1], [2, 3]])
