"""`placement.train_threads`: on real local workers (ManiSkill PushCube, the tiny CNN) the actor trains on its
own torch thread count while the rollout keeps `placement.torch_threads`, and leaving the phase restores it."""

from __future__ import annotations

import pytest
import torch

from placement.registry import build_workers
from vla_rl.config.core import ConfigError
from vla_rl.config.loader import load_config


def test_the_train_phase_runs_on_train_threads_and_the_rollout_on_torch_threads():
    before = torch.get_num_threads()
    config = load_config("quickstart", ["env.num_envs=2", "algorithm.group_size=2", "warmstart.enabled=false",
                                        "placement.torch_threads=1", "placement.train_threads=3"])
    workers = build_workers(config)
    try:
        assert torch.get_num_threads() == 1
        with workers.phase("rollout"):
            assert torch.get_num_threads() == 1
        with workers.phase("train"):
            assert torch.get_num_threads() == 3
        assert torch.get_num_threads() == 1
    finally:
        workers.close()
        torch.set_num_threads(before)


def test_a_negative_thread_count_is_a_config_error():
    with pytest.raises(ConfigError, match=r"placement.train_threads=-1 must be >= 0"):
        load_config("quickstart", ["placement.train_threads=-1"])
