"""Shared fixtures of the serving tests: one tiny OpenVLA-style policy saved as a run folder, loaded the
way `vla-rl serve` loads it, and helpers to build observations and call the policy directly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vla_rl.config.model import ModelConfig
from vla_rl.models.registry import build_policy
from vla_rl.serve import ServeConfig, ServerThread, load_for_serving

ACTION_DIM, PROPRIO_DIM, IMAGE = 7, 9, 32


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    """A run folder as the runner writes it: checkpoints/latest -> iter-000003/policy."""
    policy = build_policy(ModelConfig(family="openvla", size="tiny"), action_dim=ACTION_DIM, cameras=("main",),
                          proprio_dim=PROPRIO_DIM, seed=0)
    run = tmp_path_factory.mktemp("run")
    checkpoint = run / "checkpoints" / "iter-000003"
    policy.save_pretrained(str(checkpoint / "policy"))
    (run / "checkpoints" / "latest").write_text("iter-000003\n")
    return run


@pytest.fixture(scope="session")
def loaded(run_dir):
    return load_for_serving(run_dir)


@pytest.fixture(scope="module")
def server(loaded):
    """A server with the default settings on a free loopback port."""
    with ServerThread(loaded.server(ServeConfig(port=0))) as running:
        yield running


def _make_request(seed: int, prompt: str = "pick up the red cube", size: int = IMAGE) -> dict:
    """One openpi-style request (LIBERO keys) with seeded random content."""
    rng = np.random.default_rng(seed)
    return {
        "observation/image": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
        "observation/state": rng.standard_normal(PROPRIO_DIM),
        "prompt": prompt,
    }


def _direct_actions(policy, request: dict) -> np.ndarray:
    """(K, A) greedy actions of `policy` called in-process on the same observation."""
    obs = {"images": {"main": request["observation/image"][None]},
           "proprio": np.asarray(request["observation/state"], np.float32)[None],
           "instruction": [request["prompt"]]}
    return policy.act(obs, mode="greedy").actions[0]


@pytest.fixture(scope="session")
def make_request():
    """make_request(seed, prompt=..., size=...) -> one openpi-style request."""
    return _make_request


@pytest.fixture(scope="session")
def direct(loaded):
    """direct(request) -> (K, A) actions of the served policy called in-process."""
    return lambda request: _direct_actions(loaded.policy, request)
