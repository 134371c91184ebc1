"""Every registered env backend implements or inherits the whole `VectorEnv` contract (simulators/base.py),
so the runner and placement call it without probing (`hasattr`) for what a backend might lack."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest

from placement.ray_env import RayVectorEnv
from placement.replay_env import ReplayEnv
from simulators.base import ResetCursor, VectorEnv
from simulators.registry import ENV_BACKENDS, load_builtin_backends

load_builtin_backends()
ROOT = Path(__file__).resolve().parents[2]

CALLED_BY_RUNNER_AND_PLACEMENT = ("reset", "step", "chunk_step", "chunk_step_async", "chunk_step_wait", "pending_chunks",
                                  "worker_env_ids", "pin_workers", "get_state", "set_state", "next_group_ids",
                                  "get_reset_cursor", "set_reset_cursor", "close")


def _declared() -> dict[str, object]:
    return {name: member for name, member in vars(VectorEnv).items()
            if not name.startswith("_") and (callable(member) or isinstance(member, property))}


BACKENDS = {name: ENV_BACKENDS.get(name) for name in ENV_BACKENDS.names()}
BACKENDS["ray (placement.ray_env)"] = RayVectorEnv


def test_the_contract_declares_what_the_runner_and_placement_call():
    assert set(CALLED_BY_RUNNER_AND_PLACEMENT) <= set(_declared())
    assert "auto_reset" in VectorEnv.__annotations__ and "one_env_per_worker" in vars(VectorEnv)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_backend_implements_or_inherits_the_contract(name):
    cls = BACKENDS[name]
    assert issubclass(cls, VectorEnv) and not inspect.isabstract(cls), inspect.getattr_static(cls, "__abstractmethods__")
    for method, declared in _declared().items():
        own = inspect.getattr_static(cls, method)
        if isinstance(declared, property):
            assert isinstance(own, property), f"{name}.{method} must stay a property"
            continue
        base_params = list(inspect.signature(declared).parameters)
        params = list(inspect.signature(own).parameters)
        assert params[:len(base_params)] == base_params, f"{name}.{method}{params} does not take {base_params}"


def test_no_hasattr_probes_of_the_contract_remain():
    names = "|".join(CALLED_BY_RUNNER_AND_PLACEMENT + ("rng_states", "set_rng_states", "one_env_per_worker"))
    probe = re.compile(rf"""(hasattr|getattr)\([^)]*["']({names})["']""")
    hits = [f"{path.relative_to(ROOT)}:{i}" for folder in ("placement", "vla_rl/runner", "vla_rl/demos", "vla_rl/eval")
            for path in sorted((ROOT / folder).rglob("*.py"))
            for i, line in enumerate(path.read_text().splitlines(), 1) if probe.search(line)]
    assert hits == []


class _StepsAllTogether(ResetCursor, VectorEnv):
    """The smallest backend: no asynchronous chunks, no worker processes, no snapshots (all inherited defaults)."""

    def __init__(self, num_envs: int, seed: int) -> None:
        self.num_envs, self.auto_reset, self._cursor = num_envs, False, seed

    def reset(self, reset_ids=None, env_ids=None):
        raise NotImplementedError

    def step(self, actions):
        raise NotImplementedError

    def chunk_step(self, actions):
        raise NotImplementedError

    def close(self) -> None:
        pass


def test_the_inherited_defaults_are_the_one_worker_case_and_name_the_fix():
    env = _StepsAllTogether(num_envs=6, seed=10)
    assert env.pending_chunks == 0 and env.worker_env_ids() == [[0, 1, 2, 3, 4, 5]]
    assert env.pin_workers([0]) is None
    assert env.next_group_ids(3) == [10, 10, 10, 11, 11, 11] and env.get_reset_cursor() == 12
    with pytest.raises(NotImplementedError, match="placement.pipeline_stages=1"):
        env.chunk_step_async(np.zeros((6, 1, 7), np.float32), range(6))
    with pytest.raises(NotImplementedError, match="placement.pipeline_stages=1"):
        env.chunk_step_wait()
    with pytest.raises(NotImplementedError, match="env.backend=maniskill"):
        env.get_state()
    with pytest.raises(NotImplementedError, match="env.backend=maniskill"):
        env.set_state([])


def test_the_checkpoint_wrapper_hands_out_the_wrapped_envs_group_ids():
    env = ReplayEnv(_StepsAllTogether(num_envs=4, seed=3))
    assert env.next_group_ids(2) == [3, 3, 4, 4] and env.next_group_ids(4) == [5, 5, 5, 5]
    assert env.env.get_reset_cursor() == 6 and env.worker_env_ids() == [[0, 1, 2, 3]]
